"""The Experiment aggregate: tasks × environments, repeats, a signal config, and the counter
that makes iteration numbers gapless (two racing triggers conflict on this stream)."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidInput
from domain.ids import stream_id

# The rules every experiment obeys, however it is created or changed (API, CLI, dashboard).
MAX_NAME_LENGTH = 200
MIN_REPEATS, MAX_REPEATS = 1, 1000


def name_problems(name: object) -> list[tuple[str, str]]:
    if not isinstance(name, str):
        return [("name", "must be a string")]
    if not name.strip():
        return [("name", "must not be empty")]
    if len(name) > MAX_NAME_LENGTH:
        return [("name", f"must be at most {MAX_NAME_LENGTH} characters")]
    return []


def repeats_problems(repeats: object) -> list[tuple[str, str]]:
    if not isinstance(repeats, int) or isinstance(repeats, bool):
        return [("repeats", "must be a whole number")]
    if not MIN_REPEATS <= repeats <= MAX_REPEATS:
        return [("repeats", f"must be between {MIN_REPEATS} and {MAX_REPEATS}")]
    return []


def require_no_problems(problems: list[tuple[str, str]]) -> None:
    if problems:
        summary = "; ".join(f"{loc}: {message}" for loc, message in problems)
        raise InvalidInput(summary, tuple(problems))


class Experiment(Aggregate):
    TOPIC = "tpc:Experiment"

    class Created(Aggregate.Created):
        TOPIC = "tpc:Experiment.Created"
        public_id: str
        product_id: str
        name: str
        repeats: int

    class Renamed(Aggregate.Event):
        TOPIC = "tpc:Experiment.Renamed"
        name: str

    class RepeatsChanged(Aggregate.Event):
        TOPIC = "tpc:Experiment.RepeatsChanged"
        repeats: int

    class TaskAttached(Aggregate.Event):
        TOPIC = "tpc:Experiment.TaskAttached"
        task_id: str

    class TaskDetached(Aggregate.Event):
        TOPIC = "tpc:Experiment.TaskDetached"
        task_id: str

    class EnvironmentAttached(Aggregate.Event):
        TOPIC = "tpc:Experiment.EnvironmentAttached"
        env_id: str

    class EnvironmentDetached(Aggregate.Event):
        TOPIC = "tpc:Experiment.EnvironmentDetached"
        env_id: str

    class SignalConfigSet(Aggregate.Event):
        TOPIC = "tpc:Experiment.SignalConfigSet"
        text: str
        config_hash: str

    class SignalConfigCleared(Aggregate.Event):
        TOPIC = "tpc:Experiment.SignalConfigCleared"

    class IterationStarted(Aggregate.Event):
        TOPIC = "tpc:Experiment.IterationStarted"
        number: int

    @classmethod
    def new(cls, public_id: str, product_id: str, name: str, repeats: int) -> Experiment:
        """A new experiment, once its name and repeats pass the rules (InvalidInput else).
        The checks live here, not in `__init__`, which also replays events saved before
        the rules existed."""
        require_no_problems(name_problems(name) + repeats_problems(repeats))
        return cls(public_id=public_id, product_id=product_id, name=name, repeats=repeats)

    @property
    def runs_per_iteration(self) -> int:
        return len(self.task_ids) * len(self.env_ids) * self.repeats

    @staticmethod
    def create_id(public_id: str, product_id: str, name: str, repeats: int) -> UUID:
        return stream_id(public_id)

    @event(Created)
    def __init__(self, public_id: str, product_id: str, name: str, repeats: int) -> None:
        self.public_id = public_id
        self.product_id = product_id
        self.name = name
        self.repeats = repeats
        self.task_ids: list[str] = []
        self.env_ids: list[str] = []
        self.config_text: str | None = None
        self.config_hash: str | None = None
        self.iterations = 0

    # -- commands -------------------------------------------------------------------------

    def attach_task(self, task_id: str) -> None:
        self._check_not_member("task", task_id, self.task_ids)
        self._task_attached(task_id)

    def detach_task(self, task_id: str) -> None:
        self._check_member("task", task_id, self.task_ids)
        self._task_detached(task_id)

    def attach_environment(self, env_id: str) -> None:
        self._check_not_member("environment", env_id, self.env_ids)
        self._environment_attached(env_id)

    def detach_environment(self, env_id: str) -> None:
        self._check_member("environment", env_id, self.env_ids)
        self._environment_detached(env_id)

    def _check_not_member(self, noun: str, member_id: str, members: list[str]) -> None:
        if member_id in members:
            raise Conflict(f"{noun} {member_id} is already attached to {self.public_id}")

    def _check_member(self, noun: str, member_id: str, members: list[str]) -> None:
        if member_id not in members:
            raise Conflict(f"{noun} {member_id} is not attached to {self.public_id}")

    def set_signal_config(self, text: str, config_hash: str) -> None:
        if (text, config_hash) != (self.config_text, self.config_hash):
            self._signal_config_set(text, config_hash)

    def clear_signal_config(self) -> None:
        if self.config_hash is not None:
            self._signal_config_cleared()

    def rename(self, name: str) -> None:
        require_no_problems(name_problems(name))
        if name != self.name:
            self._renamed(name)

    def change_repeats(self, repeats: int) -> None:
        require_no_problems(repeats_problems(repeats))
        if repeats != self.repeats:
            self._repeats_changed(repeats)

    def start_iteration(self) -> int:
        """Take the next iteration number; the caller freezes the iteration in the same save."""
        if not self.task_ids:
            raise Conflict(f"{self.public_id} has no tasks: attach one with `experiment task add`")
        if not self.env_ids:
            raise Conflict(
                f"{self.public_id} has no environments: attach one with `experiment env add`"
            )
        self._iteration_started(self.iterations + 1)
        return self.iterations

    def start_rescore(self) -> int:
        """Take the next iteration number for a re-score, which runs its source iteration's
        frozen tasks and environments: the experiment's own may have changed, or gone."""
        self._iteration_started(self.iterations + 1)
        return self.iterations

    # -- events ---------------------------------------------------------------------------

    @event(TaskAttached)
    def _task_attached(self, task_id: str) -> None:
        self.task_ids.append(task_id)

    @event(TaskDetached)
    def _task_detached(self, task_id: str) -> None:
        self.task_ids.remove(task_id)

    @event(EnvironmentAttached)
    def _environment_attached(self, env_id: str) -> None:
        self.env_ids.append(env_id)

    @event(EnvironmentDetached)
    def _environment_detached(self, env_id: str) -> None:
        self.env_ids.remove(env_id)

    @event(SignalConfigSet)
    def _signal_config_set(self, text: str, config_hash: str) -> None:
        self.config_text = text
        self.config_hash = config_hash

    @event(SignalConfigCleared)
    def _signal_config_cleared(self) -> None:
        self.config_text = None
        self.config_hash = None

    @event(Renamed)
    def _renamed(self, name: str) -> None:
        self.name = name

    @event(RepeatsChanged)
    def _repeats_changed(self, repeats: int) -> None:
        self.repeats = repeats

    @event(IterationStarted)
    def _iteration_started(self, number: int) -> None:
        self.iterations = number
