"""`compose/` is rendered from the code the backends run: the checked-in folder must be what
`chaos env compose` writes today, and its state file must attach to what its Compose file starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaos.env import compose
from chaos.env.environment import Environment
from chaos.env.ports import LOWEST_PORT
from chaos.errors import SpecError

FOLDER = Path(__file__).resolve().parents[2] / "compose"


def test_the_checked_in_folder_is_what_chaos_env_compose_renders():
    stale = [name for name, text in compose.render().items()
             if not (FOLDER / name).is_file() or (FOLDER / name).read_text() != text]
    assert stale == [], f"compose/ is out of date ({', '.join(stale)}): run `python -m chaos env compose`"


def test_the_state_names_the_compose_file_s_containers_and_ports(tmp_path: Path):
    written = compose.write(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == set(compose.render())
    services = yaml.safe_load((tmp_path / "docker-compose.yml").read_text())["services"]
    env = Environment.load(tmp_path / "state.json")
    assert env.state.workdir == str(tmp_path.resolve())  # "." is the folder the state file is in
    assert {name: proc.container for name, proc in env.state.processes.items()} == \
        {name: service["container_name"] for name, service in services.items()}
    assert all(service["network_mode"] == "host" for service in services.values())
    # Fixed ports, below the range the testbed leases its own from, and all different.
    assert len(set(env.state.ports)) == len(env.state.ports) and max(env.state.ports) < LOWEST_PORT
    properties = (tmp_path / "kafka" / "server.properties").read_text()
    for link, ports in env.state.kafka_links.items():  # each link's listener is advertised at its proxy
        assert f"127.0.0.1:{ports.proxy}" in properties and env.bootstrap(link) == f"127.0.0.1:{ports.proxy}"
    assert f"-p {env.state.postgres} " in services["postgres"]["entrypoint"][-1]


def test_an_absolute_work_directory_is_kept_as_written(tmp_path: Path):
    state = compose.state().model_copy(update={"workdir": "/somewhere/else"})
    (tmp_path / "state.json").write_text(state.model_dump_json())
    assert Environment.load(tmp_path / "state.json").state.workdir == "/somewhere/else"


def test_an_unwritable_folder_is_refused_with_its_path_named(tmp_path: Path):
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(SpecError, match=r"taken/docker-compose.yml: --out .*taken: cannot be written") as refused:
        compose.write(tmp_path / "taken")
    assert refused.value.exit_code == 2
