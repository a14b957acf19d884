"""A run that used every kind of credential leaves none of them in its logs or in any error text.

One agent with API keys and bearer JWTs, the access log on, a SQLite store, and a webhook whose URL
carries a secret path and query, delivered to with push credentials. Callers send good and bad
keys and tokens on every binding, register the webhook, let it be delivered to, read it back. Every
log record of the run (every logger, DEBUG and up) and every error text a caller received is then
searched for each secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest

from a2a_grpc import errors, types
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.client import A2AClient
from a2a_grpc.observability import ObservabilitySettings
from a2a_grpc.push import PushNotifier
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.security import Credentials, WebhookPolicy
from a2a_grpc.server import ServerSettings
from tests.test_auth import KEYS, authentication, token
from tests.webhook import Receiver, until

API_KEY = KEYS["alice"]
WRONG_KEY = "wrong-key-but-secret-0123456789"
# Minted when the module is collected, minutes before the test runs in a full suite: it must
# outlive the whole run (token()'s default of 5 min did not, on a loaded machine).
TOKEN = token(exp=int(time.time()) + 24 * 3600)
EXPIRED_TOKEN = token(exp=1)
PUSH_CREDENTIALS = "push-credentials-9f8e7d6c5b4a"
PUSH_TOKEN = "push-token-1a2b3c4d5e6f"
HOOK_PATH = "hooks/secret-path-0a9b8c7d6e5f"
HOOK_QUERY = "sig=query-secret-5e6f7a8b9c0d"
SECRETS = (
    API_KEY,
    WRONG_KEY,
    TOKEN,
    EXPIRED_TOKEN,
    PUSH_CREDENTIALS,
    "secret-path-0a9b8c7d6e5f",
    "query-secret",
)


def leaked(texts: Iterable[str]) -> list[tuple[str, str]]:
    return [(secret[:12], text[:200]) for text in texts for secret in SECRETS if secret in text]


@pytest.mark.parametrize("debug", [False, True], ids=["", "debug"])  # debug: every payload logged too
@pytest.mark.asyncio
async def test_no_secret_reaches_a_log_or_an_error(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture, debug: bool
) -> None:
    settings = ServerSettings(
        authentication=authentication(),
        log_requests=True,
        grace_seconds=1.0,
        observability=ObservabilitySettings(debug=debug),
    )
    notifier = PushNotifier(policy=WebhookPolicy(allow=("127.0.0.0/8",)), initial_backoff=0.01)
    refusals: list[str] = []
    caplog.set_level(logging.DEBUG)
    async with AgentStack(
        ReferenceAgent(),
        f"sqlite:///{tmp_path}/tasks.db",
        grpc=settings,
        host="127.0.0.1",
        grpc_port=0,
        http_port=0,
        notifier=notifier,
    ) as stack:
        url = stack.http_url
        assert url is not None
        # Good and bad credentials on gRPC.
        async with A2AClient(
            stack.grpc_address, credentials=Credentials(api_key=API_KEY), timeout=10
        ) as alice:
            created = await alice.send_message(A2AClient.text_request("ask"))
            task_id = created.task.id
            config = types.TaskPushNotificationConfig(
                task_id=task_id, url=receiver.url(f"{HOOK_PATH}?{HOOK_QUERY}"), token=PUSH_TOKEN
            )
            config.authentication.scheme = "Bearer"
            config.authentication.credentials = PUSH_CREDENTIALS
            stored = await alice.create_task_push_notification_config(config)
            again = await alice.get_task_push_notification_config(task_id, stored.id)
            assert again.authentication.credentials == ""  # never given back
            await alice.send_message(A2AClient.text_request("done", task_id=task_id))
        for credentials in (Credentials(api_key=WRONG_KEY), Credentials(bearer_token=EXPIRED_TOKEN)):
            async with A2AClient(stack.grpc_address, credentials=credentials, timeout=10) as stranger:
                try:
                    await stranger.get_task(task_id)
                except errors.A2AError as exc:
                    refusals.append(exc.message + repr(exc.metadata))
        async with A2AClient(
            stack.grpc_address, credentials=Credentials(bearer_token=TOKEN), timeout=10
        ) as dave:
            await dave.list_tasks()
        # And on the JSON bindings.
        async with httpx.AsyncClient(base_url=url, headers={"A2A-Version": "1.0"}, timeout=10) as http:
            for headers in (
                {"X-API-Key": API_KEY},
                {"X-API-Key": WRONG_KEY},
                {"Authorization": f"Bearer {TOKEN}"},
            ):
                answer = await http.get("/tasks", headers=headers)
                rpc = await http.post(
                    "/", headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "ListTasks"}
                )
                refusals += [answer.text, rpc.text, answer.headers.get("www-authenticate", "")]
        # The webhook got its deliveries, with its credentials, at its secret URL.
        await until(lambda: len(receiver.paths(HOOK_PATH)) >= 2)
        delivered = receiver.paths(HOOK_PATH)[0]
        assert delivered.headers["authorization"] == f"Bearer {PUSH_CREDENTIALS}"
    await notifier.aclose()  # given to the stack, so not closed by it (its connections are kept alive)
    assert len(refusals) >= 4
    texts = [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records if record.args]
    assert any("refused credentials" in t for t in texts)  # the refusals were logged ...
    assert any("SendMessage" in t for t in texts)  # ... and so was every call (the access log)
    assert any("POST" in t and "127.0.0.1" in t for t in texts)  # ... and each webhook request
    if debug:  # ... and, with debug, every payload (the push config's among them)
        assert any(
            r.name == "a2a_grpc.debug" and "CreateTaskPushNotificationConfig" in r.getMessage()
            for r in caplog.records
        )
    assert leaked(texts) == []  # ... without a single secret
    assert leaked(refusals) == []
    # Nor in the store's file, for the push credentials (sealed at rest).
    files = [p for p in tmp_path.glob("tasks.db*") if p.is_file()]  # noqa: ASYNC240 (the run is over)
    stored_bytes = b"".join(p.read_bytes() for p in files)
    assert PUSH_CREDENTIALS.encode() not in stored_bytes
