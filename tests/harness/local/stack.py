"""Bring the whole stack up from the rag chart's render, on 127.0.0.1, and take it down."""

from __future__ import annotations

import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.local import key_files, postgres, processes
from harness.local.mounts import materialise
from harness.local.pods import ContainerSpec
from harness.local.pods import container_specs as container_specs  # the meta tests replace it here
from harness.local.programs import Launch, launch_for
from harness.local.state import RunFolder
from harness.redact import redact
from harness.render import Rendered, helm_template

# Which components a component needs healthy before it starts (by app.kubernetes.io/component).
DEPENDS_ON = {
    "ratelimit": ("redis",),
    "gateway": ("ratelimit", "model-server"),
    "llama-stack": ("gateway", "pgvector", "embeddings"),
}
READY_TIMEOUT = {"llama-stack": 90.0, "pgvector": 60.0, "embeddings": 60.0}
DEFAULT_READY_TIMEOUT = 30.0
COMPONENTS_KEY = "containers"  # (state.py reads it) in the run's state: every container a start planned, in start order
INIT_TIMEOUT_S = 120.0  # one init container (llama-stack's registry pruning imports the whole stack)


class AlreadyRunning(HarnessError):
    pass


def say(message: str) -> None:
    print(f"[local] {message}", flush=True)


@dataclass
class Component:
    spec: ContainerSpec
    launch: Launch
    init: list[tuple[ContainerSpec, Launch]] = field(default_factory=list)  # run before `launch`, in order
    pid: int = 0
    ready: bool = False
    started_at: float = 0.0

    @property
    def deps(self) -> tuple[str, ...]:
        return DEPENDS_ON.get(self.spec.component, ())


@dataclass
class StartPlan:
    components: list[Component] = field(default_factory=list)

    def by_component(self, name: str) -> list[Component]:
        return [c for c in self.components if c.spec.component == name]

    def deps_ready(self, comp: Component) -> bool:
        return all(c.ready for dep in comp.deps for c in self.by_component(dep))


def render(run: RunFolder) -> Rendered:
    say(f"rendering charts/rag with {', '.join(p.name for p in run.values_files())}")
    rendered = Rendered(helm_template(run.chart, run.release, run.values_files()))
    run.rendered_file.write_text(redact(_dump(rendered.masked_secrets()), rendered.secret_values()))
    return rendered


def refuse_if_running(run: RunFolder) -> None:
    running = run.alive_pids()
    if running:
        values = ", ".join(p.name for p in run.overlays()) or "no extra values"
        raise AlreadyRunning(
            f"a local stack named {run.name!r} is already running ({values}; pids "
            f"{', '.join(map(str, running.values()))}): use it (`make status`), stop it first (`make down`), "
            "or start another one with RAG_RUN_NAME=NAME"
        )


def up(run: RunFolder, only: Collection[str] = ()) -> Rendered:
    """Start every rendered container, or with `only` those of these components
    (app.kubernetes.io/component) alone; the caller has checked nothing runs (refuse_if_running)."""
    rendered = render(run)
    specs = [spec for spec in container_specs(rendered) if not only or spec.component in only]
    if only and not specs:
        raise processes.StartError(f"no rendered container has a component of {sorted(only)}: check the names")
    plan = StartPlan([_component(spec, run) for spec in specs])
    run.put(COMPONENTS_KEY, [c.spec.name for c in plan.components])
    try:
        _start_all(plan, run)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (processes.sigterm_interrupts)
        stopped = stop_launched(plan, run)
        say(f"interrupted: stopped the {len(stopped)} processes this start launched ({', '.join(stopped) or 'none'})")
        raise
    except Exception:
        say("start failed: stopping what was started")
        stop_launched(plan, run)
        raise
    return rendered


def stop_launched(plan: StartPlan, run: RunFolder) -> list[str]:
    """Stop every process of `plan` that was launched (a second Ctrl-C cannot cut this short) and
    forget them; returns their container names."""
    launched = [c for c in plan.components if c.pid]
    with processes.signals_held():
        _stop_components(launched)
        run.forget_pids()
        postgres.remove_staging(run.root)
    return [c.spec.name for c in launched]


def _component(spec: ContainerSpec, run: RunFolder, fresh: bool = False) -> Component:
    """`fresh`: a new pod of the same spec: its emptyDirs and files start empty (its
    PersistentVolumeClaims, under run.volumes_dir, keep their data)."""
    if fresh:
        for name in (spec.name, *(init.name for init in spec.init)):
            shutil.rmtree(run.mounts_dir / name, ignore_errors=True)
            shutil.rmtree(run.work_dir(name), ignore_errors=True)
    spec = materialise(spec, run.mounts_dir, run.volumes_dir)
    key_files.carry_over(run, run.mounts_dir / spec.name)  # the key file `harness keys` manages, if any
    init = [(i, launch_for(i, run.work_dir(i.name))) for i in spec.init]
    return Component(spec, launch_for(spec, run.work_dir(spec.name)), init)


def _start_all(plan: StartPlan, run: RunFolder) -> None:
    started = time.monotonic()
    while not all(c.ready for c in plan.components):
        for comp in plan.components:
            if not comp.pid and plan.deps_ready(comp):
                _start(comp, run)
        for comp in plan.components:
            if comp.pid and not comp.ready:
                _check(comp, run)
        time.sleep(0.1)
    say(f"all {len(plan.components)} components healthy in {time.monotonic() - started:.1f}s")


def _start(comp: Component, run: RunFolder) -> None:
    spec, launch = comp.spec, comp.launch
    _refuse_busy_port(comp)
    note = f" [stand-in: {launch.stand_in}]" if launch.stand_in else f" [{launch.program}]" if launch.program else ""
    say(f"starting {spec.component} ({spec.name}){note}")
    for init_spec, init_launch in comp.init:
        _run_init(init_spec, init_launch, run)
    if launch.prepare:
        launch.prepare()
    log, cwd = run.log(spec.name), run.work_dir(spec.name)
    proc = processes.start(spec.name, launch.argv, launch.env, log, cwd, launch.run_as)
    comp.pid, comp.started_at = proc.pid, time.monotonic()
    run.record_pid(spec.name, proc.pid)
    if spec.probe:
        what = f"{spec.probe.scheme.upper()} GET {spec.probe.path}" if spec.probe.kind == "http" else "TCP connect"
        say(f"  waiting for {spec.component}: {what} on 127.0.0.1:{spec.probe.port} (its readinessProbe)")


def _run_init(spec: ContainerSpec, launch: Launch, run: RunFolder) -> None:
    say(f"  running init container {spec.name}")
    log = run.log(spec.name)
    code = processes.run_to_completion(
        spec.name, launch.argv, launch.env, log, run.work_dir(spec.name), launch.run_as, INIT_TIMEOUT_S
    )
    if code != 0:
        raise processes.StartError(
            f"init container {spec.name} exited {code}; end of {log}:\n" + processes.log_tail(log)
        )


def _refuse_busy_port(comp: Component) -> None:
    for port in comp.spec.ports:
        if processes.port_in_use(port):
            raise processes.StartError(
                f"{comp.spec.component}: port 127.0.0.1:{port} is already in use by another program; "
                "stop that program or choose other ports (see `python -m harness up --help`)"
            )


def _check(comp: Component, run: RunFolder) -> None:
    spec = comp.spec
    if not processes.alive(comp.pid):
        raise processes.StartError(
            f"{spec.component} ({spec.name}) exited during start-up: see the end of {run.log(spec.name)} above",
            detail=processes.log_tail(run.log(spec.name)),
        )
    if spec.probe is None or processes.probe_ok(spec.probe):
        if comp.launch.after_ready:
            comp.launch.after_ready()
        comp.ready = True
        say(f"  {spec.component} healthy after {time.monotonic() - comp.started_at:.1f}s")
        return
    timeout = READY_TIMEOUT.get(spec.component, DEFAULT_READY_TIMEOUT)
    if time.monotonic() - comp.started_at > timeout:
        raise processes.StartError(
            f"{spec.component} ({spec.name}) not healthy after {timeout:.0f}s: "
            f"see the end of {run.log(spec.name)} above",
            detail=processes.log_tail(run.log(spec.name)),
        )


def _stop_components(components: list[Component]) -> None:
    for comp in reversed(components):
        if comp.pid:
            processes.stop(comp.pid)


def down(run: RunFolder) -> list[str]:
    """Stop every recorded process (dependents first); returns the names stopped."""
    pids = run.recorded_pids()
    for name, pid in reversed(list(pids.items())):
        say(f"stopping {name} (pid {pid})")
        processes.stop(pid)
    run.forget_pids()
    if postgres.remove_staging(run.root):
        say(f"removed the run's PostgreSQL data and binaries under {postgres.STAGING_ROOT}")
    return list(pids)


def changed_components(before: Rendered, after: Rendered) -> list[str]:
    """The components (app.kubernetes.io/component) whose workloads' pod templates differ between two
    renders: what `helm upgrade` rolls (a changed config reaches a pod template through its checksum
    annotation). The run's generated passwords are values, so an unchanged render compares equal."""

    def templates(rendered: Rendered) -> dict[str, list[tuple[str, Any]]]:
        out: dict[str, list[tuple[str, Any]]] = {}
        for workload in rendered.workloads():
            component = workload["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
            out.setdefault(component, []).append((workload["metadata"]["name"], workload["spec"]["template"]))
        return out

    old, new = templates(before), templates(after)
    return sorted(c for c in {*old, *new} if old.get(c) != new.get(c))


def restart(run: RunFolder, component: str) -> None:
    """Re-render and restart one component's containers (others keep running), as a Deployment
    with the Recreate strategy rolls: every old process is gone (stop() waits for its whole
    process group) before the new pod's volumes are prepared and its init containers run."""
    specs = [s for s in container_specs(render(run)) if s.component == component]
    pids = run.recorded_pids()
    for spec in specs:
        if spec.name in pids:
            say(f"restarting {spec.name}: stopping pid {pids[spec.name]}")
            processes.stop(pids[spec.name])
    # A new pod gets fresh emptyDirs; its PersistentVolumeClaims (user data) are kept.
    _start_all(StartPlan([_component(spec, run, fresh=True) for spec in specs]), run)


def stop_component(run: RunFolder, component: str) -> list[str]:
    """Stop one component's processes, as a crash or a deleted pod would; the rest keep running."""
    specs = [s for s in container_specs(render(run)) if s.component == component]
    if not specs:
        raise LookupError(f"no rendered container has component {component!r}")
    pids = run.recorded_pids()
    for spec in specs:
        if spec.name in pids:
            say(f"stopping {spec.name} (pid {pids[spec.name]}) to inject a fault")
            processes.stop(pids[spec.name])
    return [s.name for s in specs]


def start_component(run: RunFolder, component: str) -> None:
    """Start one stopped component again (fresh volumes, as a new pod) and wait until it is healthy."""
    specs = [s for s in container_specs(render(run)) if s.component == component]
    _start_all(StartPlan([_component(spec, run, fresh=True) for spec in specs]), run)


def _dump(rendered: Rendered) -> str:
    return yaml.safe_dump_all(rendered.objects, sort_keys=False)


def log_paths(run: RunFolder) -> list[Path]:
    return sorted(run.logs_dir.glob("*.log"))
