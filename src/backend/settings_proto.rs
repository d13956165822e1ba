//! The official client's settings protobufs (`PreloadedUserSettings`, type 1, and
//! `FrecencyUserSettings`, type 2), generated at build time from the vendored definitions in
//! `proto/` (see `proto/README.md`).

/// The generated types (package `discord_protos.discord_users.v1`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
mod generated {
    include!(concat!(
        env!("OUT_DIR"),
        "/discord_protos.discord_users.v1.rs"
    ));
}

pub(crate) use generated::{preloaded_user_settings, FrecencyUserSettings, PreloadedUserSettings};

/// Replaces, in `stored`, every top-level field `patch` carries: Discord's PATCH semantics
/// (a top-level field sent replaces the stored one whole; fields not sent are kept).
pub(crate) trait ReplaceTopLevel {
    /// Applies `patch` onto `self`, field by top-level field.
    fn replace_top_level(&mut self, patch: Self);
    /// The data version (`versions.data_version`), 0 when unset.
    fn data_version(&self) -> u32;
    /// Sets the versions after a server-side write.
    fn bump_version(&mut self, client_version: u32);
}

macro_rules! replace_top_level {
    ($kind:ty, $versions:ty; $($field:ident),* $(,)?) => {
        impl ReplaceTopLevel for $kind {
            fn replace_top_level(&mut self, patch: Self) {
                $(
                    if patch.$field.is_some() {
                        self.$field = patch.$field;
                    }
                )*
            }

            fn data_version(&self) -> u32 {
                self.versions.as_ref().map_or(0, |v| v.data_version)
            }

            fn bump_version(&mut self, client_version: u32) {
                let data_version = self.data_version() + 1;
                self.versions = Some(<$versions>::from_parts(
client_version, data_version));
            }
        }
    };
}

replace_top_level!(PreloadedUserSettings, preloaded_user_settings::Versions;
    inbox, guilds, user_content, voice_and_video, text_and_images, notifications, privacy,
    debug, game_library, status, localization, appearance, guild_folders, favorites,
    audio_context_settings, communities, broadcast, clips, for_later, safety_settings,
    icymi_settings, applications, ads, in_app_feedback_settings, app_version_settings, conjure);

replace_top_level!(FrecencyUserSettings, generated::frecency_user_settings::Versions;
    favorite_gifs, favorite_stickers, sticker_frecency, favorite_emojis, emoji_frecency,
    application_command_frecency, favorite_soundboard_sounds, application_frecency,
    heard_sound_frecency, played_sound_frecency, guild_and_channel_frecency,
    emoji_reaction_frecency, pinned_emoji_packs);

macro_rules! versions_from_parts {
    ($($versions:ty),*) => {$(
        impl $versions {
            fn from_parts(client_version: u32, data_version: u32) -> Self {
                Self {
                    client_version,
                    server_version: 0,
                    data_version,
                }
            }
        }
    )*};
}

versions_from_parts!(
    preloaded_user_settings::Versions,
    generated::frecency_user_settings::Versions
);
