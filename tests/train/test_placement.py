"""The default device layout: where actors act and which devices learn."""

import dataclasses

import jax
import pytest

from gtrxl_jax.config import LearnerConfig
from gtrxl_jax.train import placement


@dataclasses.dataclass(frozen=True)
class FakeDevice:
    """What placement reads of a device."""

    id: int
    process_index: int
    platform: str


def fake_devices(monkeypatch, platform: str, per_process: int, processes: int = 1,
                 this_process: int = 0) -> list[FakeDevice]:
    devices = [FakeDevice(p * per_process + i, p, platform)
               for p in range(processes) for i in range(per_process)]
    monkeypatch.setattr(jax, "devices", lambda: devices)
    monkeypatch.setattr(jax, "local_devices",
                        lambda: [d for d in devices if d.process_index == this_process])
    return devices


@pytest.mark.parametrize("platform, per_process, apart", [
    ("gpu", 4, True), ("tpu", 2, True), ("gpu", 1, False), ("cpu", 2, False)])
def test_actors_get_their_own_device_only_on_several_accelerators(
        monkeypatch, platform, per_process, apart):
    devices = fake_devices(monkeypatch, platform, per_process)
    config = LearnerConfig()
    assert placement.actor_devices(config) == [devices[0]]
    learning = placement.learner_devices(config, with_actors=True)
    assert learning == (devices[1:] if apart else devices)
    assert placement.learner_devices(config) == devices  # on device: no actors, all learn


def test_each_host_keeps_its_first_accelerator_for_its_actors(monkeypatch):
    devices = fake_devices(monkeypatch, "gpu", per_process=2, processes=2, this_process=1)
    assert placement.actor_devices(LearnerConfig()) == [devices[2]]
    assert placement.learner_devices(LearnerConfig(), with_actors=True) == [devices[1],
                                                                             devices[3]]


def test_devices_that_are_set_are_taken_as_set(monkeypatch):
    devices = fake_devices(monkeypatch, "gpu", per_process=4)
    config = LearnerConfig(actor_devices=(3,), learner_devices=(0, 1, 2))
    assert placement.actor_devices(config) == [devices[3]]
    assert placement.learner_devices(config, with_actors=True) == devices[:3]
    shared = LearnerConfig(actor_devices=(0,))  # actors set, learner unset: all devices learn
    assert placement.learner_devices(shared, with_actors=True) == devices
