"""Errors are tool errors with a code and a hint, never a crash (issue 8): unknown session, used
code, missing agent id, unreachable relay, bad arguments. After each one the same `nexus mcp`
process still answers.
"""

import secrets

from common import DEAD_URL, Agent, McpError, assert_no_keys, run, step


async def main():
    a = Agent("a", "agent-a")
    b = Agent("b", "agent-b")
    c = Agent("c", "agent-c")
    nobody = Agent("nobody")  # no --agent-id, no NEXUS_AGENT_ID, no config
    offline = Agent("offline", "agent-o", url=DEAD_URL)
    async with a.running(), b.running(), c.running(), nobody.running(), offline.running():
        sid = (await a.ok("create_session")).value["sessionId"]
        code = (await a.ok("create_pairing_link", session=sid)).value["code"]
        await b.ok("claim", code=code.lower())

        step("a used code: code_expired_or_used")
        used = await c.err("claim", "code_expired_or_used", code=code)
        assert "new pairing link" in used.value["hint"], used.raw
        await c.err("claim", "code_not_found", code="ABANDON-ABILITY-00000")
        await c.err("claim", "invalid_code", code="https://example.invalid/nothing-here")

        step("an unknown session: session_not_found, and the hint says what to do")
        unknown = secrets.token_hex(24)
        gone = await a.err("status", "session_not_found", session=unknown)
        assert "create_session" in gone.value["hint"] and "link" in gone.value["hint"], gone.raw
        await a.err("send", "session_not_found", session=unknown, text="anyone?")
        await a.err("poll", "session_not_found", session=unknown, wait=1)
        await a.err("history", "session_not_found", session=unknown)
        await a.err("poll", "invalid_session_id", session="../../etc")
        await a.err("set_alias", "unknown_session", session=unknown, alias="x")
        await c.err("send", "forbidden", session=sid, text="not a member")

        step("no agent id configured: missing_agent_id, with how to set one")
        missing = await nobody.err("create_session", "missing_agent_id")
        assert "NEXUS_AGENT_ID" in missing.value["hint"] and "--agent-id" in missing.value["hint"]
        await nobody.err("claim", "missing_agent_id", code="ABANDON-ABILITY-00000")
        await nobody.err("join", "missing_agent_id", session=sid)
        assert (await nobody.ok("list_sessions")).value["sessions"] == []

        step("the relay is unreachable: transport_error")
        down = await offline.err("create_session", "transport_error")
        assert "server URL" in down.value["hint"], down.raw
        await offline.err("claim", "transport_error", code="ABANDON-ABILITY-00000")
        await offline.err("status", "transport_error", session=unknown)

        step("arguments the tools cannot use: invalid_arguments")
        await a.err("create_session", "invalid_arguments", ttl="soon")
        await a.err("send", "invalid_arguments", session=sid)
        await a.err("send", "invalid_arguments", session=sid, text="", json=None)
        await a.err("poll", "invalid_arguments", session=sid, wait=61)
        await a.err("history", "invalid_arguments", session=sid, limit=0)
        await a.err("poll", "invalid_arguments")
        refused = await a.err("create_session", "invalid_request", ttl=10**9)
        assert refused.value["details"][0]["field"] == "ttl", refused.raw

        step("resource errors are protocol errors, and the server lives on")
        for uri in (f"nexus://sessions/{unknown}", "nexus://elsewhere/x"):
            try:
                await a.read(uri)
                raise AssertionError(f"reading {uri} succeeded")
            except McpError as e:
                assert e.error.data and e.error.data.get("hint"), e.error
        await a.alive()

        step("every error left the servers running; no key leaked")
        for agent in (a, b, c, nobody, offline):
            await agent.alive()
        assert_no_keys(a.keys() + b.keys(), a, b, c, nobody, offline)


if __name__ == "__main__":
    run(main)
