"""A whole conversation between two `nexus mcp` processes (agents A and B, separate homes),
driven by the official Python MCP SDK against a live nexus-server (issue 8).

A creates a session and a pairing link, B claims it, A sends, B's poll with wait returns the
message within a second, B replies with JSON, A reads it; history, status, renew, aliases and
list_sessions work and agree with the `nexus` CLI on the same homes; B leaves; a third agent C
(its own home) joins by session id with the join tool, and joining again answers already_joined.
No tool result contains a session key.
"""

import json
import time

import anyio

from common import TOOLS, Agent, assert_no_keys, run, step


async def main():
    a = Agent("a", "agent-a")
    b = Agent("b", "agent-b", agent_via="env")
    async with a.running(), b.running():
        step("both servers list the twelve tools, with descriptions and object schemas")
        for agent in (a, b):
            tools = (await agent.session.list_tools()).tools
            assert {t.name for t in tools} == TOOLS, [t.name for t in tools]
            for t in tools:
                assert len(t.description or "") > 80, t.name
                assert t.inputSchema.get("type") == "object", t.name
        send_schema = next(t for t in tools if t.name == "send").inputSchema
        assert {"session", "text", "json"} <= set(send_schema["properties"]), send_schema

        step("A creates a session and a pairing link")
        created = await a.ok("create_session", ttl=600, greeting="Hello from A")
        sid = created.value["sessionId"]
        assert len(sid) == 48, created.raw
        assert created.value["creatorAgentId"] == "agent-a"
        assert "sessionKey" not in created.value
        assert "create_pairing_link" in created.guidance
        link = await a.ok("create_pairing_link", session=sid)
        url, code = link.value["url"], link.value["code"]
        assert url.endswith("/p/" + code), link.raw
        assert "human" in link.guidance

        step("B claims the link")
        claimed = await b.ok("claim", code=url)
        assert claimed.value["sessionId"] == sid, claimed.raw
        assert claimed.value["agentId"] == "agent-b"
        assert "poll" in claimed.guidance
        keys = a.keys() + b.keys()
        assert len(keys) == 2, keys

        step("B's first poll returns the greeting and saves the cursor")
        first = await b.ok("poll", session=sid)
        msgs = first.value["messages"]
        assert [(m["agentId"], m["text"]) for m in msgs] == [("system", "Hello from A")], first.raw
        assert b.cursor(sid) == "0"

        step("B waits; A sends; B's poll returns within a second of the send")
        got = {}

        async def wait_for_message():
            got["result"] = await b.ok("poll", session=sid, wait=30)
            got["at"] = time.monotonic()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for_message)
            await anyio.sleep(0.5)  # let B's long-poll park on the relay
            assert "result" not in got, "B's poll returned before anything was sent"
            sent = await a.ok("send", session=sid, text="hi B")
            sent_at = time.monotonic()
        assert sent.value["verified"] is True, sent.raw
        latency = got["at"] - sent_at
        assert latency < 1.0, f"B got the message {latency:.3f} s after the send"
        msgs = got["result"].value["messages"]
        assert [(m["agentId"], m.get("text")) for m in msgs] == [("agent-a", "hi B")], got["result"].raw
        assert msgs[0]["verified"] is True
        assert "from agent-a" in got["result"].guidance
        print(f"ok: long-poll delivered {latency * 1000:.0f} ms after the send")

        step("B replies with JSON; A reads it")
        payload = {"answer": 42, "items": ["x", "y"], "ok": True}
        await b.ok("send", session=sid, text="my reply", json=payload)
        # A has never polled: its first poll returns everything, the reply last.
        reply = await a.ok("poll", session=sid, wait=10)
        last = reply.value["messages"][-1]
        assert last["agentId"] == "agent-b" and last["json"] == payload, reply.raw
        assert last["text"] == "my reply"
        again = await a.ok("poll", session=sid)
        assert again.value["messages"] == [], "the saved cursor moved: nothing new"
        assert "wait" in again.guidance

        step("history returns the last messages without moving the cursor")
        cursor_before = a.cursor(sid)
        hist = await a.ok("history", session=sid, limit=2)
        assert [m.get("text") for m in hist.value["messages"]] == ["hi B", "my reply"], hist.raw
        assert hist.value["held"] == 3, hist.raw
        assert hist.value["incomplete"] is False and hist.value["truncated"] is False, hist.raw
        full = await a.ok("history", session=sid)
        assert [m["agentId"] for m in full.value["messages"]] == ["system", "agent-a", "agent-b"]
        assert a.cursor(sid) == cursor_before
        assert (await a.ok("poll", session=sid)).value["messages"] == []

        step("status shows members, presence and expiry; renew extends it")
        status = await a.ok("status", session=sid)
        members = {m["agentId"]: m for m in status.value["members"]}
        assert set(members) == {"agent-a", "agent-b"}, status.raw
        assert members["agent-a"]["creator"] is True
        assert members["agent-b"]["lastSeenAt"], status.raw
        assert status.value["ttl"] == 600 and status.value["expiresAt"], status.raw
        assert status.value["you"] == "agent-a"
        assert "Expires at" in status.guidance
        renewed = await a.ok("renew", session=sid, ttl=900)
        assert renewed.value["ttl"] == 900, renewed.raw

        step("aliases and list_sessions agree with the nexus CLI")
        await a.ok("set_alias", session=sid, alias="chat")
        assert (await a.ok("status", session="chat")).value["sessionId"] == sid
        listed = await a.ok("list_sessions")
        row = next(s for s in listed.value["sessions"] if s["sessionId"] == sid)
        assert row["alias"] == "chat" and row["status"] == "active" and row["agentId"] == "agent-a"
        cli_ls = a.cli("ls", "--json")
        assert [s["alias"] for s in cli_ls["sessions"] if s["sessionId"] == sid] == ["chat"], cli_ls
        # The other way round: a session created by the CLI is visible to MCP.
        made = b.cli("create", "--creator-agent-id", "agent-b", "--ttl", "600")
        listed_b = await b.ok("list_sessions")
        assert made["sessionId"] in {s["sessionId"] for s in listed_b.value["sessions"]}, listed_b.raw
        keys += [k for k in b.keys() if k not in keys]

        step("the creator cannot leave: a tool error with a hint")
        refused = await a.err("leave", "forbidden", session="chat")
        assert "creator" in refused.value["hint"]
        assert a.has_session(sid), "a refused leave keeps the local state"

        step("B leaves; its local state is gone and A sees one member")
        left = await b.ok("leave", session=sid)
        assert left.value["status"] == "removed", left.raw
        assert not b.has_session(sid)
        assert sid not in {s["sessionId"] for s in (await b.ok("list_sessions")).value["sessions"]}
        status = await a.ok("status", session=sid)
        assert [m["agentId"] for m in status.value["members"]] == ["agent-a"], status.raw

        step("C joins by session id through join; joining again says already_joined")
        c = Agent("c", "agent-c")
        async with c.running():
            joined = await c.ok("join", session=sid)
            assert joined.value["sessionId"] == sid, joined.raw
            assert joined.value["agentId"] == "agent-c", joined.raw
            assert joined.value["status"] != "already_joined", joined.raw
            assert "sessionKey" not in joined.value, joined.raw
            assert "poll" in joined.guidance
            assert c.has_session(sid)
            c_keys = c.keys()
            assert len(c_keys) == 1, c_keys
            keys += c_keys
            again = await c.ok("join", session=sid)
            assert again.value == {
                "sessionId": sid,
                "status": "already_joined",
                "agentId": "agent-c",
            }, again.raw
            assert "already a member" in again.guidance, again.raw
            assert c.keys() == c_keys, "joining again keeps the saved key"
            status = await a.ok("status", session=sid)
            assert sorted(m["agentId"] for m in status.value["members"]) == [
                "agent-a",
                "agent-c",
            ], status.raw

        step("no tool result contained a session key")
        assert_no_keys(keys, a, b, c)
        print(json.dumps({"session": sid, "results": len(a.texts) + len(b.texts) + len(c.texts)}))


if __name__ == "__main__":
    run(main)
