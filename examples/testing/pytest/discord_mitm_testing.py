"""pytest plugin: a local Discord (`discord-mitm serve --control`) for a bot's test suite.

Fixtures:
  discord_mitm  -- a `Server` running `serve` on a free loopback port with the fixture file named
                   by `--discord-mitm-fixture` (or DISCORD_MITM_FIXTURE), for the whole session;
                   reset to that fixture before each test that uses `discord`.
  discord       -- the control client of that server, the world freshly reset.

Load it with `-p discord_mitm_testing` (this directory on sys.path) or from a conftest.py:
`pytest_plugins = ["discord_mitm_testing"]`. The binary is DISCORD_MITM_BIN, or `discord-mitm`
on PATH. Only the standard library is used.

    def test_ping(discord):
        discord.act_as("alice").send_message(GENERAL, "!ping")
        reply = discord.wait_for("MESSAGE_CREATE", channel_id=GENERAL, author_id=BOT)
        assert reply["data"]["content"] == "pong"
"""
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest


class ControlError(RuntimeError):
    """A control call answered with an error status."""

    def __init__(self, status, body):
        super().__init__(f"control API answered {status}: {body}")
        self.status = status
        self.body = body


class Control:
    """The test-control API of one `serve` (see docs/testing-your-bot.md)."""

    def __init__(self, base, token):
        self.base = base.rstrip("/")
        self.token = token
        self.mark = 0

    def call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", "Control " + self.token)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                text = response.read()
                return response.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, text.decode(errors="replace")

    def _ok(self, method, path, body=None, timeout=30):
        status, out = self.call(method, path, body, timeout)
        if status >= 300:
            raise ControlError(status, out)
        return out

    def status(self):
        """Cursor, clock and users of the running world."""
        return self._ok("GET", "/_mitm/control")

    def reset(self, fixture=None):
        """Back to the loaded fixture (or another fixture file); later waits start here."""
        body = {} if fixture is None else {"fixture": str(fixture)}
        out = self._ok("POST", "/_mitm/reset", body)
        self.mark = out["cursor"]
        return out

    def act_as(self, user):
        """A fixture user (id or username) to act as."""
        return User(self, user)

    def events(self, type=None, since=None, **match):
        """Logged entries after `since` (default: the last reset or mark)."""
        query = {"since": self.mark if since is None else since, **match}
        if type is not None:
            query["type"] = type
        path = "/_mitm/events?" + urllib.parse.urlencode(query)
        return self._ok("GET", path)["events"]

    def wait_for(self, type, timeout=10.0, since=None, **match):
        """The first entry of `type` whose fields match, after `since` (default: the last reset
        or mark); raises TimeoutError after `timeout` seconds."""
        body = {
            "type": type,
            "match": match,
            "since": self.mark if since is None else since,
            "timeout_ms": int(timeout * 1000),
        }
        status, out = self.call("POST", "/_mitm/events/wait", body, timeout=timeout + 30)
        if status == 408:
            raise TimeoutError(f"no {type} matching {match} within {timeout}s")
        if status >= 300:
            raise ControlError(status, out)
        return out["event"]

    def set_mark(self):
        """Later waits only see what happens from now on."""
        self.mark = self.status()["cursor"]
        return self.mark

    def clock(self, advance_ms=None, set_ms=None, frozen=None):
        """Reads, or moves, the backend's clock."""
        change = {k: v for k, v in
                  {"advance_ms": advance_ms, "set_ms": set_ms, "frozen": frozen}.items()
                  if v is not None}
        if not change:
            return self._ok("GET", "/_mitm/clock")
        return self._ok("POST", "/_mitm/clock", change)


class User:
    """Acting as one fixture user: each call is the REST call that user's client would make."""

    def __init__(self, control, who):
        self.control = control
        self.who = who

    def act(self, action, **fields):
        out = self.control._ok("POST", "/_mitm/act", {"as": self.who, "action": action, **fields})
        if out["status"] >= 300:
            raise ControlError(out["status"], out["body"])
        return out["body"]

    def send_message(self, channel_id, content=None, **fields):
        if content is not None:
            fields["content"] = content
        return self.act("send_message", channel_id=str(channel_id), **fields)

    def edit_message(self, channel_id, message_id, **fields):
        return self.act("edit_message", channel_id=str(channel_id), message_id=str(message_id), **fields)

    def delete_message(self, channel_id, message_id):
        return self.act("delete_message", channel_id=str(channel_id), message_id=str(message_id))

    def react(self, channel_id, message_id, emoji):
        return self.act("react", channel_id=str(channel_id), message_id=str(message_id), emoji=emoji)

    def typing(self, channel_id):
        return self.act("typing", channel_id=str(channel_id))

    def invoke_command(self, channel_id, name, **fields):
        return self.act("invoke_command", channel_id=str(channel_id), name=name, **fields)

    def click_component(self, channel_id, message_id, custom_id, **fields):
        return self.act("click_component", channel_id=str(channel_id),
                        message_id=str(message_id), custom_id=custom_id, **fields)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`discord-mitm serve --control` on a free loopback port; `stop()` ends it."""

    def __init__(self, fixture, binary=None, extra_args=()):
        binary = binary or os.environ.get("DISCORD_MITM_BIN") or shutil.which("discord-mitm")
        if not binary:
            raise RuntimeError("set DISCORD_MITM_BIN or put discord-mitm on PATH")
        self.dir = tempfile.mkdtemp(prefix="discord-mitm-")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        token = secrets.token_hex(24)
        env = dict(os.environ, DISCORD_MITM_CONTROL_TOKEN=token)
        self.process = subprocess.Popen(
            [binary, "serve", "--api", f"127.0.0.1:{self.port}", "--rate-limit", "off",
             "--data", os.path.join(self.dir, "data"), "--fixture", str(fixture),
             "--control", "--exit-on-stdin-close", *extra_args],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )
        self.control = Control(self.url, token)
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("serve exited: " + self.process.stderr.read().decode(errors="replace"))
            try:
                self.control.status()
                break
            except (OSError, ControlError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def pytest_addoption(parser):
    parser.addoption("--discord-mitm-fixture", default=os.environ.get("DISCORD_MITM_FIXTURE"),
                     help="fixture file for discord-mitm serve")


@pytest.fixture(scope="session")
def discord_mitm(request):
    fixture = request.config.getoption("--discord-mitm-fixture")
    if not fixture:
        raise pytest.UsageError("give --discord-mitm-fixture FILE (or DISCORD_MITM_FIXTURE)")
    server = Server(fixture)
    yield server
    server.stop()


@pytest.fixture
def discord(discord_mitm):
    discord_mitm.control.reset()
    return discord_mitm.control
