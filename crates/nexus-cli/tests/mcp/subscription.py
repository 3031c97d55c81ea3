"""Transcripts as resources and push (issue 8): B subscribes to the session's resource and
receives notifications/resources/updated after A sends; reading the resource never moves B's
saved cursor; unsubscribing stops the notifications; creating and joining sessions announce
notifications/resources/list_changed.
"""

import anyio

from common import Agent, assert_no_keys, run, step


async def main():
    a = Agent("a", "agent-a")
    b = Agent("b", "agent-b")
    async with a.running(), b.running():
        step("A creates and pairs; B claims; both are told the resource list changed")
        sid = (await a.ok("create_session", greeting="transcript test")).value["sessionId"]
        url = (await a.ok("create_pairing_link", session=sid)).value["url"]
        await b.ok("claim", code=url)
        uri = f"nexus://sessions/{sid}"
        with anyio.fail_after(10):
            while a.list_changes == 0 or b.list_changes == 0:
                await anyio.sleep(0.05)
        keys = a.keys() + b.keys()

        step("B lists its resources and reads the transcript without moving its cursor")
        listed = await b.session.list_resources()
        assert [str(r.uri) for r in listed.resources] == [uri], listed
        assert listed.resources[0].mimeType == "application/json"
        templates = await b.session.list_resource_templates()
        assert templates.resourceTemplates[0].uriTemplate == "nexus://sessions/{session}"
        doc = await b.read(uri)
        assert doc["sessionId"] == sid and doc["agentId"] == "agent-b", doc
        assert [m["text"] for m in doc["messages"]] == ["transcript test"], doc
        assert b.cursor(sid) is None, "reading a resource must not save a cursor"

        step("B subscribes; A sends; B is told the transcript changed")
        await b.session.subscribe_resource(uri)
        await b.session.subscribe_resource(uri)  # twice is harmless
        await a.ok("send", session=sid, text="ping")
        await b.wait_update(uri)
        doc = await b.read(uri)
        assert [m["text"] for m in doc["messages"]] == ["transcript test", "ping"], doc
        assert b.cursor(sid) is None, "reading a resource must not move the cursor"
        polled = await b.ok("poll", session=sid)
        assert [m["text"] for m in polled.value["messages"]] == ["transcript test", "ping"]

        step("each new message is another update")
        count = b.updates.count(uri)
        await a.ok("send", session=sid, json={"n": 2})
        with anyio.fail_after(15):
            while b.updates.count(uri) == count:
                await b.changed.wait()

        step("after unsubscribe, B is no longer told")
        await b.session.unsubscribe_resource(uri)
        count = b.updates.count(uri)
        await a.ok("send", session=sid, text="nobody is watching")
        await anyio.sleep(1.5)
        assert b.updates.count(uri) == count, "an update arrived after unsubscribe"

        step("a subscription to a session that is not ours is refused, the server lives on")
        try:
            await b.session.subscribe_resource("nexus://sessions/not%20valid")
            raise AssertionError("subscribing to an invalid session was accepted")
        except Exception as e:  # McpError: resource not found
            assert "invalid_session_id" in str(e), e
        await b.alive()

        assert_no_keys(keys, a, b)


if __name__ == "__main__":
    run(main)
