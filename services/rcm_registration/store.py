"""The registration service's collection: one document per episode (appointment, patient,
guarantor, coverages, check-in, encounter), each with its outbox."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel
from rcm_shared.service import Service
from rcm_shared.store import AggregateStore

from .domain import Episode, load

EPISODES = "episodes"


def episodes(service: Service) -> AggregateStore:
    return service.store(
        EPISODES,
        [
            IndexModel([("appointment.patient_id", ASCENDING)]),  # a patient's episodes
            IndexModel([("status", ASCENDING)]),
        ],
    )


async def find(store: AggregateStore, episode_id: str) -> Episode:
    """The episode, or `UnknownEpisode`."""
    return load(await store.get(episode_id))
