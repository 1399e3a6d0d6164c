"""The synthetic episodes include dependents: children and spouses on a subscriber's plan."""

from __future__ import annotations

from collections import Counter
from datetime import date

from rcm_contracts.registration import Relationship
from rcm_ops.synthetic import EpisodeGenerator, SyntheticEpisode

DAY = date(2025, 3, 14)


def primary_relationship(episode: SyntheticEpisode) -> Relationship | None:
    return episode.coverages[0].relationship if episode.coverages else None


def test_a_share_of_the_insured_are_dependents_of_a_spouse_or_parent() -> None:
    episodes = EpisodeGenerator(seed=5, day=DAY).episodes(1500)
    insured = [e for e in episodes if e.coverages]
    kinds = Counter(primary_relationship(e) for e in insured)
    adults = [e for e in insured if (DAY - e.patient.birth_date).days // 365 >= 18]
    on_spouse_plan = [e for e in adults if primary_relationship(e) is Relationship.SPOUSE]
    assert 0.06 < len(on_spouse_plan) / len(adults) < 0.14  # ~10% of insured adults
    assert 0.10 < kinds[Relationship.CHILD] / len(insured) < 0.20  # ~15% are children
    for episode in on_spouse_plan:
        (coverage,) = episode.coverages
        spouse = coverage.subscriber
        assert spouse is not None
        assert spouse != episode.patient
        assert (spouse.last_name, spouse.address) == (
            episode.patient.last_name,
            episode.patient.address,
        )
        assert episode.guarantor == episode.patient  # an adult answers for their own bills
        # What the front desk sends carries the relationship and the subscriber.
        (sent,) = episode.registration_body()["coverages"]
        assert sent["relationship"] == "01"
        assert sent["subscriber"]["first_name"] == spouse.first_name


def test_every_batch_of_a_run_exercises_the_patient_loop() -> None:
    # The end-to-end test's batch (30 episodes, seed 11) and make run's (200, seed 1).
    for seed, count in ((11, 30), (1, 200)):
        episodes = EpisodeGenerator(seed=seed, day=DAY).episodes(count)
        dependents = [
            e for e in episodes if any(c.relationship is not Relationship.SELF for c in e.coverages)
        ]
        assert dependents, (seed, count)
        assert any(primary_relationship(e) is not Relationship.SELF for e in dependents)
