//! Accounts: Discord-looking tokens, salted password hashes, bot applications, guild creation.
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::model::{app_flags, Application, Credentials, User};
use super::snowflake::{now_ms, Snowflake};
use super::store::{Store, StoreError};

/// A token shaped like Discord's: base64(user id) . base64(timestamp) . random HMAC-like part.
/// Libraries that parse the first segment to learn the bot's id get the right answer.
pub(crate) fn generate_token(user_id: Snowflake) -> String {
    let mut random = [0u8; 20];
    super::clock::fill_random(&mut random);
    let seconds = (now_ms() / 1000) as u32;
    format!(
        "{}.{}.{}",
        STANDARD_NO_PAD.encode(user_id.to_string()),
        URL_SAFE_NO_PAD.encode(seconds.to_be_bytes()),
        URL_SAFE_NO_PAD.encode(random)
    )
}

fn hash_password(salt: &str, password: &str) -> String {
    hex::encode(Sha256::digest(format!("{salt}:{password}").as_bytes()))
}

/// What is needed to create an account.
#[derive(Debug, Clone)]
pub(crate) struct NewUser {
    pub id: Snowflake,
    pub username: String,
    pub global_name: Option<String>,
    pub bot: bool,
    pub token: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

/// Builds the user and credentials records without storing them.
pub(crate) fn build_user(new: NewUser) -> (User, Credentials) {
    let mut user = User::new(new.id, &new.username, new.bot);
    user.global_name = new.global_name;
    user.email = new.email.clone();
    let (salt, hash) = match &new.password {
        Some(password) => {
            let mut salt = [0u8; 16];
            super::clock::fill_random(&mut salt);
            let salt = hex::encode(salt);
            let hash = hash_password(&salt, password);
            (Some(salt), Some(hash))
        }
        None => (None, None),
    };
    let credentials = Credentials {
        user_id: new.id,
        token: new.token.unwrap_or_else(|| generate_token(new.id)),
        email: new.email,
        password_salt: salt,
        password_hash: hash,
    };
    (user, credentials)
}

/// Creates and stores an account; returns it and its token.
pub(crate) fn create_user(store: &Store, new: NewUser) -> Result<(User, String), StoreError> {
    let (user, credentials) = build_user(new);
    store.put_user(&user, &credentials)?;
    Ok((user, credentials.token))
}

/// The application Discord creates with a bot: same id, privileged intents per `flags`.
pub(crate) fn bot_application(bot: &User, owner_id: Snowflake, flags: Option<u64>) -> Application {
    let mut key = [0u8; 32];
    super::clock::fill_random(&mut key);
    Application {
        id: bot.id,
        name: bot.username.clone(),
        description: String::new(),
        icon: None,
        bot_public: true,
        bot_require_code_grant: false,
        flags: flags.unwrap_or(app_flags::ALL_LIMITED),
        owner_id,
        bot_id: bot.id,
        verify_key: hex::encode(key),
        privileged_intents_explicit: flags.is_some(),
    }
}

/// The user and token for an email (or username) and password, if they match.
pub(crate) fn check_login(
    store: &Store,
    login: &str,
    password: &str,
) -> Result<Option<(User, String)>, StoreError> {
    let Some(user_id) = store.emails.get(&login.to_lowercase())? else {
        return Ok(None);
    };
    let Some(credentials) = store.credentials.get(user_id)? else {
        return Ok(None);
    };
    let (Some(salt), Some(expected)) = (&credentials.password_salt, &credentials.password_hash)
    else {
        return Ok(None);
    };
    if hash_password(salt, password) != *expected {
        return Ok(None);
    }
    Ok(store.user(user_id)?.map(|user| (user, credentials.token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_start_with_the_base64_user_id() {
        let token = generate_token(Snowflake(100000000000000002));
        let first = token.split('.').next().unwrap();
        assert_eq!(first, "MTAwMDAwMDAwMDAwMDAwMDAy");
        assert_eq!(token.split('.').count(), 3);
        assert_ne!(token, generate_token(Snowflake(100000000000000002)));
    }

    #[test]
    fn login_checks_the_password() {
        let store = Store::temporary().unwrap();
        create_user(
            &store,
            NewUser {
                id: Snowflake(7),
                username: "alice".into(),
                global_name: None,
                bot: false,
                token: Some("t".into()),
                email: Some("alice@example.com".into()),
                password: Some("hunter2".into()),
            },
        )
        .unwrap();
        let (user, token) = check_login(&store, "Alice@Example.com", "hunter2")
            .unwrap()
            .unwrap();
        assert_eq!((user.id, token.as_str()), (Snowflake(7), "t"));
        assert!(check_login(&store, "alice@example.com", "nope")
            .unwrap()
            .is_none());
        assert!(check_login(&store, "bob@example.com", "hunter2")
            .unwrap()
            .is_none());
    }

    #[test]
    fn fixture_bots_get_limited_privileged_intents_unless_flags_say_otherwise() {
        use crate::gateway::intents;
        let bot = User::new(Snowflake(2), "b", true);
        let default = bot_application(&bot, Snowflake(1), None);
        assert_eq!(default.allowed_privileged_intents(), intents::PRIVILEGED);
        let restricted = bot_application(
            &bot,
            Snowflake(1),
            Some(app_flags::GATEWAY_GUILD_MEMBERS_LIMITED),
        );
        assert_eq!(
            restricted.allowed_privileged_intents(),
            intents::GUILD_MEMBERS
        );
        let none = bot_application(&bot, Snowflake(1), Some(0));
        assert_eq!(none.allowed_privileged_intents(), 0);
    }
}
