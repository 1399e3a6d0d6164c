"""The front desk's HTTP API: schedule, register, check in, document, cancel.

Every problem with a request is a 422 that names the field and the rule, and nothing is
stored; a command that does not fit the episode's state is a 409; an unknown episode 404.
Repeating a command is safe: it answers 200 with the current state and emits nothing.
Commands are asked of the replica that owns the episode (rcm_shared.requests).
"""

from __future__ import annotations

import re
from datetime import UTC, date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, field_validator
from rcm_contracts import registration as contracts
from rcm_contracts.registration import ClinicalDocumentation, Person
from rcm_shared.aggregates import Aggregates
from rcm_shared.auth import Actor, Role, allow
from rcm_shared.clock import utc_now
from rcm_shared.errors import NotFound
from rcm_shared.flow import flow_view
from rcm_shared.http import Body
from rcm_shared.service import Service

from .domain import (
    EPISODE_ID,
    GUARANTOR_ID,
    PATIENT_ID,
    AppointmentCreated,
    Episode,
    coverage_list_problems,
    npi_problem,
    person_problems,
)
from .handlers import episode_id_for, new_id

FrontDesk = Annotated[Actor, Depends(allow(Role.FRONT_DESK))]
# Whoever works the episode may see it; auditors see the audit trail, not the patient.
EPISODE_READERS = allow(Role.FRONT_DESK, Role.CODER, Role.CODING_LEAD, Role.BILLER, Role.COLLECTOR)


def _valid_npi(value: str) -> str:
    if problem := npi_problem(value):
        raise ValueError(problem)
    return value


NpiField = Annotated[str, Field(pattern=r"^\d{10}$"), AfterValidator(_valid_npi)]


def _today() -> date:
    return utc_now().date()


def _no_problems(problems: list[str]) -> None:
    if problems:
        raise ValueError("; ".join(problems))


class Request(Body):
    """A front-desk command's body: no unknown field, no NUL (rcm_shared.http.Body)."""


class AppointmentRequest(Request):
    patient_id: str | None = Field(
        default=None, pattern=PATIENT_ID, description="A returning patient's id; else new."
    )
    scheduled_start: AwareDatetime = Field(description="With a zone; stored in UTC.")
    rendering_provider_npi: NpiField
    visit_type: str = Field(min_length=1, max_length=40)


class CoverageDraft(contracts.CoverageDraft):
    # A person's typo in a field name is refused here; the contract ignores unknown fields.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CoveragesRequest(Request):
    coverages: list[CoverageDraft] = Field(default_factory=list)

    @field_validator("coverages")
    @classmethod
    def _coverages(cls, value: list[CoverageDraft]) -> list[CoverageDraft]:
        _no_problems(coverage_list_problems(value, _today()))
        return value


class RegistrationRequest(CoveragesRequest):
    patient: Person
    guarantor_id: str | None = Field(
        default=None, pattern=GUARANTOR_ID, description="Who gets statements; else the patient."
    )

    @field_validator("patient")
    @classmethod
    def _patient(cls, value: Person) -> Person:
        _no_problems(person_problems(value, _today()))
        return value


class EncounterRequest(Request):
    place_of_service: str = Field(pattern=r"^\d{2}$", description="CMS code, e.g. 11 office.")
    rendering_provider_npi: NpiField | None = Field(
        default=None, description="Defaults to the appointment's provider."
    )
    documentation: ClinicalDocumentation


class AuthorizationRequest(Request):
    coverage_id: str = Field(pattern=r"^V[0-9a-f]{12}$")
    number: str = Field(pattern=r"^[A-Za-z0-9-]{1,50}$", description="The payer's number.")


class CancelRequest(Request):
    reason: str = Field(min_length=1, max_length=200)


def _episode_id(episode_id: str) -> str:
    """Only ids registration made name an episode; the owner need not be asked of others."""
    if not re.fullmatch(EPISODE_ID, episode_id):
        raise NotFound("no such episode")
    return episode_id


def router(service: Service, episodes: Aggregates[Episode]) -> APIRouter:
    api = APIRouter(tags=["registration"])

    @api.post("/appointments", status_code=201, response_model=AppointmentCreated)
    async def schedule(
        body: AppointmentRequest,
        clerk: FrontDesk,
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=200, description="Resubmission guard.")
        ] = None,
    ) -> JSONResponse:
        """Opens an episode. With an Idempotency-Key, the same request again answers 200
        with the same ids; another request under that key is a 409."""
        request = contracts.AppointmentRequested(
            episode_id=episode_id_for(idempotency_key) if idempotency_key else new_id("E"),
            requested_by=clerk.subject,
            patient_id=body.patient_id,
            scheduled_start=body.scheduled_start.astimezone(UTC),
            rendering_provider_npi=body.rendering_provider_npi,
            visit_type=body.visit_type,
        )
        return (await service.ask(request, idempotency_key)).response()

    @api.post("/episodes/{episode_id}/registration", response_model=Episode)
    async def register(
        episode_id: str, body: RegistrationRequest, clerk: FrontDesk
    ) -> JSONResponse:
        request = contracts.RegistrationRequested(
            episode_id=_episode_id(episode_id),
            requested_by=clerk.subject,
            patient=body.patient,
            guarantor_id=body.guarantor_id,
            coverages=body.coverages,
        )
        return (await service.ask(request)).response()

    @api.put("/episodes/{episode_id}/coverages", response_model=Episode)
    async def coverages(
        episode_id: str,
        body: CoveragesRequest,
        clerk: Annotated[Actor, Depends(allow(Role.FRONT_DESK, Role.BILLER))],
    ) -> JSONResponse:
        request = contracts.CoverageUpdateRequested(
            episode_id=_episode_id(episode_id),
            requested_by=clerk.subject,
            coverages=body.coverages,
        )
        return (await service.ask(request)).response()

    @api.post("/episodes/{episode_id}/check-in", response_model=Episode)
    async def check_in(episode_id: str, clerk: FrontDesk) -> JSONResponse:
        request = contracts.CheckInRequested(
            episode_id=_episode_id(episode_id), requested_by=clerk.subject
        )
        return (await service.ask(request)).response()

    @api.post("/episodes/{episode_id}/encounter", response_model=Episode)
    async def encounter(episode_id: str, body: EncounterRequest, clerk: FrontDesk) -> JSONResponse:
        request = contracts.EncounterCompletionRequested(
            episode_id=_episode_id(episode_id),
            requested_by=clerk.subject,
            place_of_service=body.place_of_service,
            rendering_provider_npi=body.rendering_provider_npi,
            documentation=body.documentation,
        )
        return (await service.ask(request)).response()

    @api.post("/episodes/{episode_id}/authorizations", response_model=Episode)
    async def authorization(
        episode_id: str, body: AuthorizationRequest, clerk: FrontDesk
    ) -> JSONResponse:
        """Records a prior authorization obtained or found after registration; billers
        find it on the episode (`authorizations`) when a payer denies for its lack."""
        request = contracts.AuthorizationRecordingRequested(
            episode_id=_episode_id(episode_id),
            requested_by=clerk.subject,
            coverage_id=body.coverage_id,
            number=body.number,
        )
        return (await service.ask(request)).response()

    @api.post("/episodes/{episode_id}/cancel", response_model=Episode)
    async def cancel(episode_id: str, body: CancelRequest, clerk: FrontDesk) -> JSONResponse:
        request = contracts.CancellationRequested(
            episode_id=_episode_id(episode_id), requested_by=clerk.subject, reason=body.reason
        )
        return (await service.ask(request)).response()

    @api.get("/episodes/{episode_id}", dependencies=[Depends(EPISODE_READERS)])
    async def get(episode_id: str) -> Episode:
        episode = await episodes.get(_episode_id(episode_id))
        if episode is None:
            raise NotFound(f"no episode {episode_id}")
        return episode

    @api.get("/episodes/{episode_id}/flow", dependencies=[Depends(allow(Role.OPS))])
    async def flow(episode_id: str) -> dict[str, Any]:
        """Ops' view of the episode: ids, times and statuses, no patient value."""
        episode = await episodes.get(_episode_id(episode_id))
        if episode is None:
            raise NotFound(f"no episode {episode_id}")
        return flow_view(episode.model_dump(mode="json"))

    return api
