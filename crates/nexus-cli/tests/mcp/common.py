"""Shared helpers of the MCP tests: `nexus mcp` driven by the official Python MCP SDK.

The Rust test (crates/nexus-cli/tests/suite/mcp.rs) starts a real nexus-server and runs each
script with these environment variables:
  NEXUS_BIN        the `nexus` binary under test
  NEXUS_TEST_URL   the running relay
  NEXUS_DEAD_URL   a loopback URL where nothing listens

Each agent is one `nexus mcp` process spawned by the SDK's stdio client, with its own
NEXUS_HOME. Every text an agent receives (tool results, errors, resources) is recorded so a test
can check that no session key ever appears in any of them.
"""

import contextlib
import glob
import json
import os
import shutil
import subprocess
import tempfile
import time

import anyio
from mcp import ClientSession, types
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import McpError

NEXUS = os.environ["NEXUS_BIN"]
URL = os.environ["NEXUS_TEST_URL"]
DEAD_URL = os.environ["NEXUS_DEAD_URL"]

# Functional bound for one tool call (long-polls included); a hang fails instead of blocking.
CALL_TIMEOUT = 90

TOOLS = {
    "claim",
    "create_pairing_link",
    "create_session",
    "history",
    "join",
    "leave",
    "list_sessions",
    "poll",
    "renew",
    "send",
    "set_alias",
    "status",
}


class Result:
    """One tool result: the JSON object on the first line and the guidance line after it."""

    def __init__(self, raw, is_error):
        self.raw = raw
        self.is_error = is_error
        first, _, rest = raw.partition("\n")
        self.value = json.loads(first)
        self.guidance = rest.strip()


class Agent:
    """One `nexus mcp` process with its own home folder."""

    def __init__(self, name, agent_id=None, url=URL, agent_via="flag"):
        self.name = name
        self.agent_id = agent_id
        self.url = url
        self.agent_via = agent_via
        self.home = tempfile.mkdtemp(prefix=f"nexus-mcp-{name}-")
        self.texts = []
        self.updates = []
        self.list_changes = 0
        self.changed = anyio.Event()
        self.session = None

    def env(self):
        env = {
            "NEXUS_HOME": self.home,
            "NEXUS_URL": self.url,
            "NEXUS_HTTP_TIMEOUT": "10",
        }
        if self.agent_id and self.agent_via == "env":
            env["NEXUS_AGENT_ID"] = self.agent_id
        return env

    @contextlib.asynccontextmanager
    async def running(self):
        args = ["mcp"]
        if self.agent_id and self.agent_via == "flag":
            args += ["--agent-id", self.agent_id]
        params = StdioServerParameters(command=NEXUS, args=args, env=self.env())
        try:
            async with stdio_client(params) as (read, write):
                async with ClientSession(read, write, message_handler=self.on_message) as session:
                    with anyio.fail_after(CALL_TIMEOUT):
                        await session.initialize()
                    self.session = session
                    yield self
        finally:
            self.session = None
            shutil.rmtree(self.home, ignore_errors=True)

    async def on_message(self, message):
        if isinstance(message, types.ServerNotification):
            root = message.root
            if isinstance(root, types.ResourceUpdatedNotification):
                self.updates.append(str(root.params.uri))
            elif isinstance(root, types.ResourceListChangedNotification):
                self.list_changes += 1
            self.changed.set()
            self.changed = anyio.Event()

    async def call(self, tool, /, **arguments):
        with anyio.fail_after(CALL_TIMEOUT):
            res = await self.session.call_tool(tool, arguments)
        raw = "".join(c.text for c in res.content if c.type == "text")
        self.texts.append(raw)
        return Result(raw, bool(res.isError))

    async def ok(self, tool, /, **arguments):
        r = await self.call(tool, **arguments)
        assert not r.is_error, f"{self.name}: {tool} failed: {r.raw}"
        assert "error" not in r.value, f"{self.name}: {tool}: {r.raw}"
        assert r.guidance, f"{self.name}: {tool} has no guidance line: {r.raw}"
        return r

    async def err(self, tool, expected, /, **arguments):
        """Asserts a tool error with the `expected` code, a hint on the second line, then that
        the server still answers."""
        r = await self.call(tool, **arguments)
        assert r.is_error, f"{self.name}: {tool} should fail with {expected}: {r.raw}"
        assert r.value.get("error") == expected, f"{self.name}: {tool}: expected {expected}: {r.raw}"
        assert r.value.get("hint"), f"{self.name}: {tool}: no hint: {r.raw}"
        assert r.guidance == r.value["hint"], f"{self.name}: {tool}: hint line: {r.raw}"
        await self.alive()
        return r

    async def alive(self):
        with anyio.fail_after(CALL_TIMEOUT):
            await self.session.send_ping()
            tools = await self.session.list_tools()
        assert {t.name for t in tools.tools} == TOOLS

    async def read(self, uri):
        with anyio.fail_after(CALL_TIMEOUT):
            res = await self.session.read_resource(uri)
        text = res.contents[0].text
        self.texts.append(text)
        return json.loads(text)

    async def wait_update(self, uri, timeout=15):
        """Waits until `resources/updated` for `uri` has arrived."""
        with anyio.fail_after(timeout):
            while uri not in self.updates:
                await self.changed.wait()

    def keys(self):
        """Every session key saved in this agent's home."""
        out = []
        for path in glob.glob(os.path.join(self.home, "sessions", "*", "key")):
            with open(path) as f:
                out.append(f.read().strip())
        return [k for k in out if k]

    def cursor(self, sid):
        path = os.path.join(self.home, "sessions", sid, "cursor")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read().strip()

    def has_session(self, sid):
        return os.path.isdir(os.path.join(self.home, "sessions", sid))

    def cli(self, *args):
        """Runs the `nexus` CLI on this agent's home; returns its JSON."""
        env = dict(os.environ, NEXUS_HOME=self.home, NEXUS_URL=self.url)
        out = subprocess.run([NEXUS, *args], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"nexus {' '.join(args)}: {out.stdout} {out.stderr}"
        return json.loads(out.stdout)


def assert_no_keys(keys, *agents):
    """No tool result, error or resource any agent received contains one of `keys`."""
    assert keys, "no session keys were saved: the check would be vacuous"
    for k in keys:
        assert len(k) == 64, f"unexpected key shape: {len(k)} chars"
    seen = 0
    for agent in agents:
        for text in agent.texts:
            seen += 1
            for k in keys:
                assert k not in text, f"{agent.name} received a session key in: {text[:200]}"
    assert seen > 0
    print(f"ok: {len(keys)} session key(s) absent from {seen} result text(s)")


def step(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(main):
    anyio.run(main)
    print("PASS", flush=True)


__all__ = [
    "Agent",
    "CALL_TIMEOUT",
    "DEAD_URL",
    "McpError",
    "TOOLS",
    "URL",
    "assert_no_keys",
    "run",
    "step",
]
