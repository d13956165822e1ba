"""What the interaction scenarios share: users acting over REST (post, invoke a command through
`POST /_mitm/interactions`, read an interaction's status) and a user's own gateway session that
records every dispatch it is sent, so a scenario asserts what each user sees.

Waits are bounded loops on a condition (a dispatch arriving, a status changing), never sleeps.
"""
import asyncio
import os
import time

import aiohttp

API = os.environ["DMITM_API"]
REST = API + "/api/v10"
GATEWAY = "ws" + API[len("http"):] + "/?v=10&encoding=json"
ALICE_TOKEN = os.environ["ALICE_TOKEN"]
ALICE_ID = os.environ["ALICE_ID"]
CAROL_TOKEN = os.environ.get("CAROL_TOKEN", "carol-token")
CAROL_ID = os.environ.get("CAROL_ID", "")
BOT_ID = os.environ.get("BOT_ID", "")
GUILD_ID = os.environ["GUILD_ID"]
GENERAL_ID = os.environ["GENERAL_ID"]
TIMEOUT = 10.0

EPHEMERAL = 1 << 6
LOADING = 1 << 7


def check(condition, what):
    if not condition:
        raise AssertionError(what)


class ApiFailure(RuntimeError):
    """A REST call answered with an error status."""

    def __init__(self, method, path, status, body):
        super().__init__(f"{method} {path} -> {status} {body}")
        self.status = status
        self.body = body


class User:
    """A human account acting through plain REST with its user token."""

    def __init__(self, session, token):
        self.session = session
        self.token = token

    async def call(self, method, path, body=None):
        headers = {"Authorization": self.token}
        async with self.session.request(method, REST + path, json=body, headers=headers) as r:
            data = None if r.status == 204 else await r.json(content_type=None)
            if r.status >= 300:
                raise ApiFailure(method, path, r.status, data)
            return data

    async def invoke(self, body, wait=False):
        """Makes an interaction as this user; with `wait`, answers its status once the bot has
        answered (or the 3 seconds are over)."""
        body = {"application_id": BOT_ID, "channel_id": GENERAL_ID, **body}
        path = "/_mitm/interactions" + ("?wait=true" if wait else "")
        return await self.call("POST", path, body)

    async def interaction(self, interaction_id):
        return await self.call("GET", f"/_mitm/interactions/{interaction_id}")

    async def until(self, interaction_id, condition, what):
        """Polls the interaction until `condition(state)` holds (bounded by TIMEOUT)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            state = await self.interaction(interaction_id)
            if condition(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {state}")
            await asyncio.sleep(0.02)

    async def history(self, channel_id=GENERAL_ID, limit=50):
        return await self.call("GET", f"/channels/{channel_id}/messages?limit={limit}")


class Session:
    """A user's gateway session (JSON, no compression) that keeps every dispatch it receives."""

    def __init__(self, session, token):
        self.http = session
        self.token = token
        self.events = []
        self.changed = asyncio.Event()
        self.ws = None
        self.reader = None
        self.heartbeat = None

    async def connect(self):
        self.ws = await self.http.ws_connect(GATEWAY, max_msg_size=0)
        hello = await self.ws.receive_json()
        interval = hello["d"]["heartbeat_interval"] / 1000
        await self.ws.send_json({"op": 2, "d": {
            "token": self.token,
            "capabilities": 0,
            "properties": {"os": "Linux", "browser": "Discord Client", "device": ""},
            "presence": {"status": "online", "since": 0, "activities": [], "afk": False},
            "compress": False,
        }})
        self.reader = asyncio.create_task(self._read())
        self.heartbeat = asyncio.create_task(self._beat(interval))
        await self.wait_for("READY")
        return self

    async def _beat(self, interval):
        while True:
            await asyncio.sleep(interval)
            await self.ws.send_json({"op": 1, "d": None})

    async def _read(self):
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            payload = message.json()
            if payload.get("op") == 0:
                self.events.append((payload["t"], payload["d"]))
                self.changed.set()

    def seen(self, name, predicate=lambda d: True):
        return [d for (t, d) in self.events if t == name and predicate(d)]

    async def wait_for(self, name, predicate=lambda d: True, what=None):
        """The first dispatch `name` matching `predicate` (bounded by TIMEOUT)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            found = self.seen(name, predicate)
            if found:
                return found[0]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what or name}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def close(self):
        for task in (self.heartbeat, self.reader):
            if task:
                task.cancel()
        if self.ws:
            await self.ws.close()


async def visibility_barrier(alice, sessions, marker):
    """Posts `marker` as alice and waits until every session has its MESSAGE_CREATE: whatever
    a session was sent before it (in order) has arrived by then."""
    posted = await alice.call("POST", f"/channels/{GENERAL_ID}/messages", {"content": marker})
    for session in sessions:
        await session.wait_for("MESSAGE_CREATE", lambda d: d["id"] == posted["id"], marker)
    return posted
