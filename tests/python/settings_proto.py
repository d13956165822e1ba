"""Builds and reads settings-proto messages with the published discord-protos definitions, for
tests/serve_routes_account.rs.

  settings_proto.py build-preloaded   -> base64 PreloadedUserSettings (status, theme, locale,
                                          custom status, guild folders)
  settings_proto.py build-appearance  -> base64 with only appearance (theme midnight, dev mode)
  settings_proto.py build-frecency    -> base64 FrecencyUserSettings (a favourite GIF)
  settings_proto.py read-preloaded B64 / read-frecency B64 -> the decoded message as JSON
"""
import base64
import json
import sys

from google.protobuf.json_format import MessageToDict
from discord_protos import FrecencyUserSettings, PreloadedUserSettings


def out(message):
    print(base64.b64encode(message.SerializeToString()).decode())


def build_preloaded():
    s = PreloadedUserSettings()
    s.versions.client_version = 14
    s.status.status.value = "idle"
    s.status.custom_status.text = "testing"
    s.status.custom_status.emoji_name = "🧪"
    s.appearance.theme = PreloadedUserSettings.Theme.Value("THEME_LIGHT")
    s.localization.locale.value = "de"
    folder = s.guild_folders.folders.add()
    folder.guild_ids.append(200000000000000001)
    folder.name.value = "Work"
    folder.id.value = 7
    out(s)


def build_appearance():
    s = PreloadedUserSettings()
    s.appearance.theme = PreloadedUserSettings.Theme.Value("THEME_MIDNIGHT")
    s.appearance.developer_mode = True
    out(s)


def build_frecency():
    s = FrecencyUserSettings()
    s.versions.client_version = 3
    gif = s.favorite_gifs.gifs["https://example.com/cat.gif"]
    gif.src = "https://example.com/cat.mp4"
    gif.width = 320
    gif.height = 240
    gif.order = 1
    out(s)


def read(kind, data):
    message = kind()
    message.ParseFromString(base64.b64decode(data))
    print(json.dumps(MessageToDict(message, preserving_proto_field_name=True)))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "build-preloaded":
        build_preloaded()
    elif command == "build-appearance":
        build_appearance()
    elif command == "build-frecency":
        build_frecency()
    elif command == "read-preloaded":
        read(PreloadedUserSettings, sys.argv[2])
    elif command == "read-frecency":
        read(FrecencyUserSettings, sys.argv[2])
    else:
        sys.exit(f"unknown command {command}")
