"""The composition root of the use cases: the services container, beside the adapters' containers.

``ServicesContainer`` takes the ports (``RuntimePorts``) and the policies and builds every use case
once, each with the ports it needs, by keyword; ``ToolRuntime`` only delegates to them. Built on
the adapters' container by ``toolrt.bootstrap``, or alone over ports a caller made
(:func:`build_runtime`). Tests override a provider here instead of patching modules.
"""

from __future__ import annotations

from dependency_injector import containers, providers

from toolrt.application import ExecutionPolicy, RuntimePorts, ToolRuntime
from toolrt.application._artifacts import CodeIntake
from toolrt.application.background_executions import BackgroundExecutions
from toolrt.application.collect_garbage import CollectGarbage, GarbageCollectionPolicy
from toolrt.application.deregister_tool import DeregisterTool
from toolrt.application.duplicates import DuplicateFinder
from toolrt.application.event_bus import EventBus
from toolrt.application.examples import ExampleRunner
from toolrt.application.execute_tool import ExecuteTool
from toolrt.application.fleet_metrics import ReadFleetMetrics, StoredCounters
from toolrt.application.queries import GetToolStatus, ListTools, ListVersions
from toolrt.application.register_tool import RegisterTool
from toolrt.application.register_tools import RegisterTools
from toolrt.application.repair_store import RepairStore
from toolrt.application.requirements import NoEnvironments, Requirements
from toolrt.application.rollback_tool import RollbackTool
from toolrt.application.search_tools import SearchTools
from toolrt.application.services import RuntimeServices
from toolrt.application.tool_templates import TemplateCatalog
from toolrt.application.traffic import TrafficControl
from toolrt.application.update_tool import UpdateTool
from toolrt.ports import EnvironmentBuilder

__all__ = ["ServicesContainer", "build_runtime"]


def _environments(ports: RuntimePorts, profile: str) -> EnvironmentBuilder:
    # Without an environment builder, requirements are refused with a reason naming the profile.
    return ports.environments or NoEnvironments(profile)


class ServicesContainer(containers.DeclarativeContainer):
    """Every use case, built once per runtime from the ports and policies given."""

    ports = providers.Dependency(instance_of=RuntimePorts)
    policy = providers.Dependency(instance_of=ExecutionPolicy, default=providers.Factory(ExecutionPolicy))
    gc_policy = providers.Dependency(
        instance_of=GarbageCollectionPolicy, default=providers.Factory(GarbageCollectionPolicy)
    )
    profile = providers.Dependency(instance_of=str, default="custom")

    # One store offers every storage port; each use case takes the ones it needs.
    store = ports.provided.repository
    artifacts = ports.provided.artifacts
    clock = ports.provided.clock
    ids = ports.provided.ids
    tracer = ports.provided.tracer

    # Counters no execution record holds also go to the store (see fleet_metrics).
    counters = providers.Singleton(StoredCounters, inner=ports.provided.metrics, counters=store, clock=clock)
    events = providers.Singleton(EventBus, ports.provided.events)
    requirements = providers.Singleton(Requirements, providers.Callable(_environments, ports, profile), policy)
    templates = providers.Singleton(TemplateCatalog)

    examples = providers.Singleton(
        ExampleRunner,
        sandbox=ports.provided.sandbox,
        policy=policy,
        ids=ids,
        requirements=requirements,
        tools=store,
        references=store,
        teams=store,
    )
    search = providers.Singleton(
        SearchTools,
        tools=store,
        index=store,
        teams=store,
        executions=store,
        metrics=counters,
        embedder=ports.provided.embedder,
    )
    # New code comes in one way, for registrations and updates alike (validated, stored once, counted).
    intake = providers.Singleton(
        CodeIntake,
        tools=store,
        references=store,
        teams=store,
        artifacts=artifacts,
        validator=ports.provided.validator,
        clock=clock,
        metrics=counters,
        events=events,
    )
    update = providers.Singleton(
        UpdateTool,
        tools=store,
        intake=intake,
        teams=store,
        gateway=ports.provided.gateway,
        clock=clock,
        metrics=counters,
        events=events,
        examples=examples,
        policy=policy,
        tracer=tracer,
        requirements=requirements,
    )
    register = providers.Singleton(
        RegisterTool,
        tools=store,
        intake=intake,
        teams=store,
        artifacts=artifacts,
        gateway=ports.provided.gateway,
        clock=clock,
        ids=ids,
        metrics=counters,
        events=events,
        policy=policy,
        examples=examples,
        duplicates=providers.Singleton(DuplicateFinder, tools=store, references=store, teams=store, search=search),
        tracer=tracer,
        requirements=requirements,
        updater=update,
    )
    register_many = providers.Singleton(RegisterTools, register)
    deregister = providers.Singleton(
        DeregisterTool,
        tools=store,
        references=store,
        teams=store,
        artifacts=artifacts,
        gateway=ports.provided.gateway,
        clock=clock,
        metrics=counters,
        events=events,
    )
    rollback = providers.Singleton(
        RollbackTool,
        tools=store,
        teams=store,
        artifacts=artifacts,
        gateway=ports.provided.gateway,
        clock=clock,
        metrics=counters,
        events=events,
    )
    traffic = providers.Singleton(
        TrafficControl,
        tools=store,
        executions=store,
        teams=store,
        artifacts=artifacts,
        gateway=ports.provided.gateway,
        clock=clock,
        metrics=counters,
        events=events,
    )
    execute = providers.Singleton(
        ExecuteTool,
        tools=store,
        executions=store,
        teams=store,
        sandbox=ports.provided.sandbox,
        clock=clock,
        ids=ids,
        metrics=counters,
        events=events,
        policy=policy,
        artifacts=artifacts,
        traffic=traffic,
        tracer=tracer,
        requirements=requirements,
    )
    background = providers.Singleton(BackgroundExecutions, execute=execute, executions=store, policy=policy)
    status = providers.Singleton(GetToolStatus, tools=store, references=store, teams=store, artifacts=artifacts)
    list_tools = providers.Singleton(ListTools, tools=store)
    versions = providers.Singleton(ListVersions, tools=store, teams=store)
    collect_garbage = providers.Singleton(
        CollectGarbage,
        tools=store,
        references=store,
        executions=store,
        counters=store,
        artifacts=artifacts,
        clock=clock,
        metrics=counters,
        events=events,
    )
    fleet = providers.Singleton(
        ReadFleetMetrics, tools=store, executions=store, counters=store, clock=clock, gathered=counters
    )
    repair = providers.Singleton(
        RepairStore, tools=store, references=store, index=store, artifacts=artifacts, clock=clock
    )

    services = providers.Singleton(
        RuntimeServices,
        ports=ports,
        policy=policy,
        gc_policy=gc_policy,
        profile=profile,
        counters=counters,
        events=events,
        requirements=requirements,
        templates=templates,
        examples=examples,
        search=search,
        register=register,
        register_many=register_many,
        update=update,
        deregister=deregister,
        rollback=rollback,
        traffic=traffic,
        execute=execute,
        background=background,
        status=status,
        list=list_tools,
        versions=versions,
        collect_garbage=collect_garbage,
        fleet=fleet,
        repair=repair,
    )
    runtime = providers.Singleton(ToolRuntime, services)


def build_runtime(
    ports: RuntimePorts,
    *,
    policy: ExecutionPolicy | None = None,
    gc_policy: GarbageCollectionPolicy | None = None,
    profile: str = "custom",
) -> ToolRuntime:
    """A ToolRuntime over ``ports``, adapters a caller built (as tests and benchmarks do); ``profile``
    is the name ``health()`` reports. ``toolrt.connect`` builds one from settings instead."""
    container = ServicesContainer(ports=ports, profile=profile)
    if policy is not None:
        container.policy.override(policy)
    if gc_policy is not None:
        container.gc_policy.override(gc_policy)
    runtime: ToolRuntime = container.runtime()
    return runtime
