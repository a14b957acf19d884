"""One configuration (``a2a_grpc.settings``): defaults < the YAML file < ``A2A_*`` variables < flags,
every bad file, variable or value refused naming the key and where it came from, and
``a2a-grpc config show`` attributing each value to its source."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from a2a_grpc import types
from a2a_grpc.cli import parse
from a2a_grpc.cli.config import COMMANDS, configuration, reference, sections_of, with_tables
from a2a_grpc.settings import MAX_FILE_BYTES, ConfigError, Configuration, Section, library_sections, load
from tests.conftest import stop_process

CLI = [sys.executable, "-m", "a2a_grpc.cli"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No A2A_* variable of the machine running the tests leaks into them."""
    for name in list(os.environ):
        if name.upper().startswith("A2A_"):
            monkeypatch.delenv(name)


def config_of(*argv: str) -> Configuration:
    return configuration(parse(argv))


def write(tmp_path: Path, text: str, name: str = "a2a.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def refusal(*argv: str) -> str:
    with pytest.raises(ConfigError) as caught:
        config_of(*argv)
    return str(caught.value)


# --- precedence ------------------------------------------------------------------------------------


def test_each_key_takes_the_last_of_default_file_environment_and_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        "server:\n  port: 7001\n  grace_seconds: 2.5\n  public_address: file.example:443\n"
        "session:\n  heartbeat_interval: 5\n",
    )
    monkeypatch.setenv("A2A_SERVER__PORT", "7002")
    monkeypatch.setenv("a2a_session__heartbeat_interval", "4")  # names are read in any case
    config = config_of("serve", "--config", path, "--grpc-port", "7003")
    expected = {
        "server.port": (7003, "--grpc-port"),  # file, env and flag: the flag
        "session.heartbeat_interval": (4.0, "a2a_session__heartbeat_interval"),  # file and env: env
        "server.grace_seconds": (2.5, path),  # the file only
        "server.public_address": ("file.example:443", path),
        "server.keepalive_time_ms": (30_000, "default"),  # nobody: the dataclass's default
        "serve.store": ("sqlite:///.a2a/tasks.db", "default"),
    }
    assert {k: (config.value(k), config.sources[k]) for k in expected} == expected
    assert config.model.server.port == 7003  # type: ignore[attr-defined]
    # Each section makes its dataclass from these values.
    assert config.built["session"].heartbeat_interval == 4.0
    assert config.built["server"].grace_seconds == 2.5


def test_a_flag_not_given_leaves_the_key_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  reuse_port: true\n  log_requests: true\nlog:\n  level: info\n")
    config = config_of("serve", "--config", path)
    assert (config.value("server.reuse_port"), config.sources["server.reuse_port"]) == (True, path)
    assert config.value("log.level") == "info"
    flagged = config_of("--log-level", "error", "serve", "--config", path, "--log-requests")
    assert (flagged.value("log.level"), flagged.sources["log.level"]) == ("error", "--log-level")
    # --log-requests sets both fronts' key.
    both = {flagged.sources["server.log_requests"], flagged.sources["bridge.log_requests"]}
    assert both == {"--log-requests"}


def test_the_file_may_come_from_a2a_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "limits:\n  max_parts: 3\n")
    monkeypatch.setenv("A2A_CONFIG", path)
    config = config_of("serve")
    assert (config.value("limits.max_parts"), config.sources["limits.max_parts"]) == (3, path)
    other = write(tmp_path, "limits:\n  max_parts: 4\n", "other.yaml")
    assert config_of("serve", "--config", other).value("limits.max_parts") == 4  # --config wins


def test_flags_that_set_converted_or_several_keys(tmp_path: Path) -> None:
    config = config_of(
        "bridge", "http-to-grpc", "--upstream", "127.0.0.1:9", "--listen", "[::1]:0", "--max-body-mib", "2",
        "--timeout", "3", "--debug",
    )  # fmt: skip
    assert config.value("http.host") == "::1"
    assert config.value("http.port") == 0
    assert config.sources["http.host"] == config.sources["http.port"] == "--listen"
    assert config.value("bridge.max_body_bytes") == 2 * 1024 * 1024
    assert config.value("client.connect_timeout") == 3.0
    assert config.value("observability.debug") is True
    grpc_front = config_of("bridge", "grpc-to-http", "--upstream", "http://a.example", "--listen", ":0")
    assert (grpc_front.value("server.host"), grpc_front.value("server.port")) == ("127.0.0.1", 0)
    assert config_of("bridge", "grpc-to-http", "--upstream", "http://a.example").value("server.port") == 50052


def test_a2a_debug_is_the_observability_debug_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A2A_DEBUG", "1")
    config = config_of("serve")
    assert (config.value("observability.debug"), config.sources["observability.debug"]) == (True, "A2A_DEBUG")
    monkeypatch.setenv("A2A_DEBUG", "maybe")
    assert refusal("serve").startswith("A2A_DEBUG: expected true or false, got 'maybe'")


def test_the_values_of_a_file_reach_the_cli_helpers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "serve:\n  store: memory\n  webhook_allow: [127.0.0.0/8]\nauth:\n  jwt_issuer: https://issuer.test\n"
        "tls:\n  cert: c.pem\ncaller_tls:\n  enabled: true\n",
    )
    args = parse(["serve", "--config", path])
    configuration(args)
    assert (args.store, args.webhook_allow, args.jwt_issuer) == (
        "memory",
        ["127.0.0.0/8"],
        "https://issuer.test",
    )
    assert (args.tls_cert, args.tls, args.tls_ca) == ("c.pem", True, None)


def test_the_peers_section_reaches_the_reference_agents_pool(tmp_path: Path) -> None:
    from a2a_grpc.cli.common import CliError
    from a2a_grpc.cli.serving import delegation
    from a2a_grpc.reference_agent import ReferenceAgent
    from a2a_grpc.session.pool import PoolSettings

    path = write(tmp_path, "peers:\n  idle_seconds: 2.5\n  max_peers: 3\n  going_away_seconds: 30\n")
    args = parse(["serve", "--config", path])
    config = configuration(args)
    agent = ReferenceAgent()
    delegation(agent, args, config)
    assert agent.peers.settings == PoolSettings(idle_seconds=2.5, max_peers=3, going_away_seconds=30.0)

    class Other:
        pass

    with pytest.raises(CliError, match="peers"):  # keys no other agent reads are not silently ignored
        delegation(Other(), args, config)
    bad = write(tmp_path, "peers:\n  max_peers: 0\n", "bad.yaml")
    problem = refusal("serve", "--config", bad)
    assert re.search(r"bad.yaml: peers.max_peers: max_peers must be at least 1", problem)


@pytest.mark.asyncio
async def test_the_store_section_reaches_the_sqlite_store_serve_opens(tmp_path: Path) -> None:
    from a2a_grpc.cli.serving import task_store
    from a2a_grpc.tasks import SqliteTaskStore, StoreSettings

    path = write(
        tmp_path,
        f"serve:\n  store: sqlite:///{tmp_path}/tasks.db\n"
        "store:\n  lease_seconds: 3\n  busy_timeout: 0.5\n  commit_delay: 0\n",
    )
    args = parse(["serve", "--config", path])
    store = task_store(args, configuration(args))
    try:
        assert isinstance(store, SqliteTaskStore)
        assert store.settings == StoreSettings(busy_timeout=0.5, lease_seconds=3.0, commit_delay=0.0)
        assert store.registry.lease_seconds == 3.0  # the leases it writes
    finally:
        await store.close()
    bad = write(tmp_path, "store:\n  lease_seconds: 0\n", "bad.yaml")
    assert re.search(
        r"bad.yaml: store.lease_seconds: lease_seconds must be", refusal("serve", "--config", bad)
    )


def test_serve_delegation_lifetime_is_the_lifetime_of_the_tokens_serve_mints(tmp_path: Path) -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from a2a_grpc.cli.common import CliError
    from a2a_grpc.cli.serving import delegation
    from a2a_grpc.reference_agent import ReferenceAgent
    from a2a_grpc.security.delegation import DEFAULT_LIFETIME

    key = tmp_path / "planner.pem"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    assert config_of("serve").value("serve.delegation_lifetime") == DEFAULT_LIFETIME  # shown, not null
    path = write(tmp_path, f"serve:\n  delegation_key: {key}\n  delegation_lifetime: 42\n")
    args = parse(["serve", "--config", path])
    minter = delegation(ReferenceAgent(), args, configuration(args))
    token = minter.mint(audience="127.0.0.1:1", task_id="t-1", skill="echo")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 42
    alone = write(tmp_path, "serve:\n  delegation_lifetime: 42\n", "alone.yaml")
    args = parse(["serve", "--config", alone])
    with pytest.raises(ConfigError, match=r"alone.yaml: serve.delegation_lifetime: .*delegation_key"):
        delegation(ReferenceAgent(), args, configuration(args))

    class Other:
        card = types.AgentCard(name="other")

    with pytest.raises(CliError, match="delegation_lifetime"):
        delegation(Other(), args, configuration(args))
    for bad in ("0", "-1", "nan"):
        bad_file = write(tmp_path, f"serve:\n  delegation_lifetime: {bad}\n", "bad.yaml")
        assert "serve.delegation_lifetime" in refusal("serve", "--config", bad_file)


# --- bad files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "server:\n  max_concurent_streams: 3\n",
            r":2: unknown key server.max_concurent_streams "
            r"\(did you mean max_concurrent_streams\?\)",
        ),
        ("sever:\n  port: 1\n", r":1: unknown section 'sever' \(did you mean server\?\)"),
        ("outbound:\n  unary_timeout: 1\n", r":1: unknown section 'outbound'"),  # not serve's
        ("server:\n  port: abc\n", r":2: server.port: expected a whole number, got 'abc'"),
        ("server:\n  port: '7000'\n", r":2: server.port: expected a whole number, got '7000'"),
        ("server:\n  port: 7000.5\n", r":2: server.port: expected a whole number"),
        (
            "session:\n  heartbeat_interval: true\n",
            r":2: session.heartbeat_interval: expected a number, got Tr",
        ),
        ("session:\n  heartbeat_interval: .inf\n", r":2: session.heartbeat_interval: expected a number"),
        ("server:\n  log_requests: 'yes'\n", r":2: server.log_requests: expected true or false, got 'yes'"),
        ("observability:\n  log_format: xml\n", r":2: observability.log_format: expected one of 'text', 'js"),
        ("serve:\n  webhook_allow: 10.0.0.0/8\n", r":2: serve.webhook_allow: expected a list of strings"),
        ("server:\n  public_address: [a, b]\n", r":2: server.public_address: expected a string or null"),
        ("server: [1, 2]\n", r":1: server must be a mapping of keys, not a list"),
        ("- server\n", r": must be a mapping of sections \(server:, session: \.\.\.\), not a list"),
        ("just words\n", r": must be a mapping of sections .*, not a string"),
        ("server:\n  port: 1\n  port: 2\n", r":3: not valid YAML: the key 'port' is given twice"),
        ("server:\n  port: [1\nsession: {}\n", r":3: not valid YAML"),
        ("server:\n\tport: 1\n", r":2: not valid YAML"),
        ("[" * 100_000, r": nested too deeply"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_line_and_key(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    message = refusal("serve", "--config", path)
    assert re.match(re.escape(path) + problem, message), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "session:\n  heartbeat_interval: 0.5\n",
            "session.heartbeat_interval: heartbeat_interval must be at",
        ),
        ("server:\n  port: 70000\n", "server.port: port must be 0..65535, not 70000"),
        ("session:\n  resume_grace: 400\n", "session.resume_grace: resume_grace must be from 0 to max_det"),
        ("limits:\n  rate_per_principal: often\n", "limits.rate_per_principal: rate_per_principal must be"),
        ("push:\n  max_backoff: 0.01\n", "push.max_backoff: max_backoff (0.01) must be >= initial_backoff"),
        ("http:\n  port: -1\n", "http.port: port must be a port number"),
        ("observability:\n  metrics_port: 65536\n", "observability.metrics_port: metrics_port must be 0.."),
    ],
)
def test_a_value_its_dataclass_refuses_names_the_key_and_the_file(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    assert refusal("serve", "--config", path).startswith(f"{path}: {problem}")


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.yaml")
    assert refusal("serve", "--config", missing) == (
        f"cannot read the configuration file {missing}: No such file or directory"
    )
    assert refusal("serve", "--config", str(tmp_path)) == (
        f"cannot read the configuration file {tmp_path}: Is a directory"
    )
    huge = write(tmp_path, "#" * (MAX_FILE_BYTES + 1))
    assert refusal("serve", "--config", huge) == f"{huge}: larger than 1024 KiB: not a configuration file"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"serve:\n  store: caf\xe9\n")
    assert refusal("serve", "--config", str(latin)) == f"{latin}: not UTF-8 text (at byte offset 19)"
    if os.geteuid() != 0:  # root reads whatever the mode says
        locked = write(tmp_path, "server: {}\n", "locked.yaml")
        os.chmod(locked, 0)
        assert refusal("serve", "--config", locked).endswith(f"{locked}: Permission denied")


def test_an_alias_bomb_is_refused_at_once_in_a_few_words(tmp_path: Path) -> None:
    anchors = ["&a0 [" + ", ".join(["x"] * 10) + "]"]
    anchors += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = write(tmp_path, f"server:\n  public_address: [{', '.join(anchors)}]\n")  # 10**9 x's expanded
    message = refusal("serve", "--config", path)
    assert message.startswith(f"{path}:2: server.public_address: expected a string or null, got [[")
    assert len(message) < 300


def test_an_empty_file_and_empty_sections_are_the_defaults(tmp_path: Path) -> None:
    for text in ("", "# nothing\n", "server:\nsession: {}\n"):
        config = config_of("serve", "--config", write(tmp_path, text))
        assert set(config.sources.values()) == {"default"}


# --- the environment ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("A2A_SERVER__PROT", "1", "A2A_SERVER__PROT: no such setting (did you mean A2A_SERVER__PORT?)"),
        ("A2A_SERVER", '{"port": 1}', "A2A_SERVER: no such setting"),
        ("A2A_OUTBOUND__UNARY_TIMEOUT", "1", "A2A_OUTBOUND__UNARY_TIMEOUT: no such setting"),
        ("A2A_SERVER__PORT", "abc", "A2A_SERVER__PORT: server.port: expected a whole number, got 'abc'"),
        ("A2A_SERVER__PORT", "99999", "A2A_SERVER__PORT: server.port: port must be 0..65535, not 99999"),
        (
            "A2A_SESSION__HEARTBEAT_INTERVAL",
            "nan",
            "A2A_SESSION__HEARTBEAT_INTERVAL: session.heartbeat_interval: expected a number",
        ),
        (
            "A2A_SERVE__WEBHOOK_ALLOW",
            "10.0.0.0/8",
            "A2A_SERVE__WEBHOOK_ALLOW: serve.webhook_allow: expected a JSON list of strings",
        ),
        (
            "A2A_SERVE__WEBHOOK_ALLOW",
            "[1, 2]",
            "A2A_SERVE__WEBHOOK_ALLOW: serve.webhook_allow: expected a list",
        ),
        (
            "A2A_OBSERVABILITY__LOG_FORMAT",
            "xml",
            "A2A_OBSERVABILITY__LOG_FORMAT: observability.log_format: expected one of 'text', 'json'",
        ),
    ],
)
def test_a_bad_variable_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert refusal("serve").startswith(problem)


def test_variables_hold_lists_and_nulls_and_credentials_are_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("A2A_SERVE__WEBHOOK_ALLOW", '["10.0.0.0/8", "hooks.internal"]')
    monkeypatch.setenv("A2A_OBSERVABILITY__METRICS_PORT", "null")
    monkeypatch.setenv("A2A_LIMITS__MAX_STORED_BYTES_PER_PRINCIPAL", "1000")
    for name in ("A2A_GRPC_API_KEY", "A2A_GRPC_BEARER_TOKEN", "A2A_GRPC_STORE_KEY"):
        monkeypatch.setenv(name, "s3cret-value")
    config = config_of("serve")
    assert config.value("serve.webhook_allow") == ("10.0.0.0/8", "hooks.internal")
    assert config.sources["observability.metrics_port"] == "A2A_OBSERVABILITY__METRICS_PORT"
    assert config.value("observability.metrics_port") is None
    assert config.value("limits.max_stored_bytes_per_principal") == 1000
    assert "s3cret-value" not in config.as_text() + json.dumps(config.as_json())


def test_passwords_in_urls_are_never_shown_nor_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("A2A_SERVE__STORE", "redis://user:hunter2@cache.internal/0")
    monkeypatch.setenv("A2A_AUTH__TRUST_DELEGATIONS", '["planner=https://u:hunter2@idp.example/jwks.json"]')
    config = config_of("serve")
    shown = config.as_text() + json.dumps(config.as_json())
    assert "hunter2" not in shown
    assert "redis://cache.internal/0" in shown
    assert config.value("serve.store") == "redis://user:hunter2@cache.internal/0"  # the value itself is kept
    bad = write(tmp_path, "limits:\n  rate_storage: async+nosuch://:hunter2@cache.internal\n")
    message = refusal("serve", "--config", bad)
    assert message.startswith(f"{bad}: limits.rate_storage: rate_storage must be an asyncio storage URI")
    assert "hunter2" not in message


def test_the_same_key_twice_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A2A_SERVER__PORT", "1")
    monkeypatch.setenv("a2a_server__port", "2")
    assert "both set server.port" in refusal("serve")


def test_a_bad_flag_value_is_refused_by_the_dataclass(tmp_path: Path) -> None:
    # argparse checks a flag's form; the dataclass what it means (its message names the key).
    assert refusal("serve", "--public-address", "nowhere") == (
        "public_address must look like HOST:PORT, not 'nowhere'"
    )


def test_the_upstream_of_a_bridge_may_come_from_the_file_and_is_checked(tmp_path: Path) -> None:
    good = write(tmp_path, "upstream:\n  url: 127.0.0.1:50051\n")
    args = parse(["bridge", "http-to-grpc", "--config", good])
    configuration(args)
    assert args.upstream == "127.0.0.1:50051"
    bad = write(tmp_path, "upstream:\n  url: nowhere\n", "bad.yaml")
    message = refusal("bridge", "http-to-grpc", "--config", bad)
    assert message.startswith(f"{bad}: upstream.url: 'nowhere' has no port"), message
    with pytest.raises(Exception, match=r"needs its upstream: --upstream, or upstream\.url"):
        config_of("bridge", "grpc-to-http")


# --- the sections come from the dataclasses ----------------------------------------------------------


def test_sections_are_derived_from_the_settings_dataclasses() -> None:
    from a2a_grpc.server import ServerSettings
    from a2a_grpc.session.negotiation import SessionSettings

    sections = library_sections()
    server = {k.name: k for k in sections["server"].keys}
    assert server["max_receive_message_bytes"].default == ServerSettings().max_receive_message_bytes
    assert server["max_receive_message_bytes"].doc.startswith("Larger requests fail with RESOURCE_EXHAUSTED")
    for objects in ("interceptors", "authentication", "tls", "session", "limits", "observability"):
        assert objects not in server  # objects are not configuration
    session = {k.name for k in sections["session"].keys}
    assert session == {f for f in SessionSettings.__dataclass_fields__}


def test_a_field_added_to_a_dataclass_is_a_key_without_more_code() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Drain:
        """How a server drains."""

        grace: float = 10.0
        """Seconds in-flight calls get."""

        def __post_init__(self) -> None:
            if self.grace < 0:
                raise ValueError(f"grace must not be negative, not {self.grace}")

    section = Section.of("drain", Drain)
    assert [(k.path, k.default, k.doc, k.env) for k in section.keys] == [
        ("drain.grace", 10.0, "Seconds in-flight calls get.", "A2A_DRAIN__GRACE")
    ]
    assert load([section], flags={"drain.grace": (2, "--grace")}).built["drain"] == Drain(2.0)
    with pytest.raises(ConfigError, match=r"^grace must not be negative"):
        load([section], flags={"drain.grace": (-1, "--grace")})


def test_the_help_names_the_variables_of_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    from a2a_grpc.settings import CONFIG_ENV, DEBUG_ENV

    with pytest.raises(SystemExit):
        parse(["serve", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert f"${CONFIG_ENV}" in shown
    assert f"{DEBUG_ENV}=1" in shown


def test_client_commands_do_not_load_the_configuration_model() -> None:
    loaded = "'pydantic' in sys.modules or 'a2a_grpc.settings' in sys.modules"
    code = f"import sys, a2a_grpc.cli; sys.exit({loaded})"
    assert subprocess.run([sys.executable, "-c", code], timeout=60, check=False).returncode == 0


def test_every_configured_command_has_its_sections() -> None:
    for command in COMMANDS:
        names = [s.name for s in sections_of(command)]
        assert len(names) == len(set(names))
        assert "log" in names
        assert "observability" in names


def test_the_tables_of_the_docs_are_the_keys_of_the_model() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    assert with_tables(page) == page, "docs/configuration.md is stale: run python tools/config_tables.py"
    for name, table in reference().items():
        assert f"### {name}\n" in page, name
        assert table.count("\n| `") >= 1, name


def test_the_command_line_logs_as_the_configuration_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import a2a_grpc.cli

    parser_module = importlib.import_module("a2a_grpc.cli.parser")  # the package exports a parser()
    logging_calls: list[tuple[object, ...]] = []
    ran: list[Configuration] = []

    async def fake_serve(args: object) -> int:
        ran.append(args.config)  # type: ignore[attr-defined]
        return 0

    monkeypatch.setattr(parser_module, "serve", fake_serve)
    monkeypatch.setattr(
        a2a_grpc.cli, "configure_logging", lambda *a, **k: logging_calls.append((*a, k["debug"]))
    )
    path = write(tmp_path, "log:\n  level: info\nobservability:\n  log_format: json\n")
    assert a2a_grpc.cli.main(["serve", "--config", path]) == 0
    assert logging_calls == [("info", "json", False)]
    monkeypatch.setenv("A2A_DEBUG", "1")
    assert a2a_grpc.cli.main(["serve", "--config", path, "--log-format", "text", "--metrics-port", "0"]) == 0
    assert logging_calls[-1] == ("info", "text", True)
    # ServerSettings.observability carries the values (other parts of the server act on them).
    observability = ran[-1].built["observability"]
    assert (observability.metrics_port, observability.debug) == (0, True)
    assert a2a_grpc.cli.main(["serve", "--config", str(tmp_path / "nope.yaml")]) == 1


# --- config show -------------------------------------------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("A2A_")}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, check=False, env={**clean, **(env or {})}
    )


def test_config_show_attributes_each_value_to_its_source(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "server:\n  port: 7001\n  grace_seconds: 1.5\nlimits:\n  rate_storage: async+memory://\n"
        "observability:\n  otlp_endpoint: http://user:hunter2@collector.internal:4317\n",
    )
    env = {"A2A_SERVER__GRACE_SECONDS": "3", "A2A_GRPC_API_KEY": "k3y-never-shown"}
    text = run("config", "show", "--config", path, "serve", "--grpc-port", "7002", env=env)
    assert text.returncode == 0, text.stderr
    lines = {line.split(" = ")[0].strip(): line for line in text.stdout.splitlines()}
    assert re.search(r"= 7002 +\(--grpc-port\)$", lines["server.port"])
    assert re.search(r"= 3\.0 +\(A2A_SERVER__GRACE_SECONDS\)$", lines["server.grace_seconds"])
    endpoint = rf'= "http://collector.internal:4317" +\({re.escape(path)}\)$'
    assert re.search(endpoint, lines["observability.otlp_endpoint"])
    assert re.search(r'= "warning" +\(default\)$', lines["log.level"])
    assert "hunter2" not in text.stdout
    assert "k3y-never-shown" not in text.stdout

    shown = run("config", "show", "--json", "serve", "--config", path, env=env)
    assert shown.returncode == 0, shown.stderr
    got = json.loads(shown.stdout)
    assert got["server"]["port"] == {"value": 7001, "source": path}
    assert got["server"]["grace_seconds"] == {"value": 3.0, "source": "A2A_SERVER__GRACE_SECONDS"}
    assert got["session"]["heartbeat_interval"] == {"value": 15.0, "source": "default"}
    assert got["observability"]["otlp_endpoint"]["value"] == "http://collector.internal:4317"
    assert "hunter2" not in shown.stdout


def test_config_show_of_a_bridge_and_its_refusals(tmp_path: Path) -> None:
    bridge = ["bridge", "grpc-to-http", "--upstream", "http://a.example", "--listen", ":0"]
    shown = run("config", "show", "--json", *bridge)
    assert shown.returncode == 0, shown.stderr
    got = json.loads(shown.stdout)
    assert set(got) == {"log", "upstream", "server", "outbound", "observability", "tls", "caller_tls"}
    assert got["server"]["port"] == {"value": 0, "source": "--listen"}
    bad = run("config", "show", "--config", write(tmp_path, "server:\n  prot: 1\n"))
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        f"a2a-grpc: error: {tmp_path / 'a2a.yaml'}:2: unknown key server.prot (did you mean port?)"
    ]
    unset = run("config", "show", "--json", "bridge", "http-to-grpc")  # shown even before it is set
    assert json.loads(unset.stdout)["upstream"]["url"] == {"value": None, "source": "default"}
    wrong = run("config", "show", "send", "127.0.0.1:1", "hi")
    assert wrong.returncode == 1
    assert "not of send" in wrong.stderr


def test_serve_refuses_a_bad_file_before_starting(tmp_path: Path) -> None:
    path = write(tmp_path, "session:\n  heartbeat_interval: 0.5\n")
    result = run("serve", "--grpc-port", "0", "--store", "memory", "--config", path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"a2a-grpc: error: {path}: session.heartbeat_interval: heartbeat_interval must be at least 1 s"
    )
    assert "serving" not in result.stdout


# --- a real server runs with the file's values -------------------------------------------------------


@pytest.mark.asyncio
async def test_serve_runs_with_the_values_of_its_file(tmp_path: Path) -> None:
    from a2a_grpc import errors
    from a2a_grpc.client import A2AClient

    path = write(
        tmp_path,
        "serve:\n  store: memory\nserver:\n  port: 0\n  public_address: agents.example:443\n"
        "  log_requests: true\nlimits:\n  max_parts: 1\nobservability:\n  log_format: json\n",
    )
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *CLI,
            "serve",
            "--config",
            path,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env={k: v for k, v in os.environ.items() if not k.upper().startswith("A2A_")},
        )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        found = re.search(r"at (127\.0\.0\.1:\d+)", line)
        assert found, line + log.read_text()
        async with A2AClient(found.group(1)) as client:
            card = await client.get_agent_card()
            assert card.supported_interfaces[0].url == "agents.example:443"  # server.public_address
            await client.send_message(A2AClient.text_request("echo one part"))
            request = A2AClient.text_request("echo two parts")
            request.message.parts.append(types.Part(text="the second"))
            with pytest.raises(errors.LimitExceededError) as refused:  # limits.max_parts: 1
                await client.send_message(request)
            assert refused.value.metadata["limit"] == "max_parts"
    finally:
        await stop_process(proc)
    # observability.log_format and server.log_requests: one JSON access line per call.
    lines = [json.loads(text) for text in log.read_text().splitlines() if text.startswith("{")]
    access = [entry for entry in lines if entry["logger"] == "a2a_grpc.access"]
    assert len(access) == 3, log.read_text()
    assert all("SendMessage" in entry["message"] or "GetAgentCard" in entry["message"] for entry in access)
