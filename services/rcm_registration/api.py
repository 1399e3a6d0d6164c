"""The front desk's HTTP API: schedule, register, check in, document, cancel.

Every problem with a request is a 422 that names the field and the rule, and nothing is
stored; a command that does not fit the episode's state is a 409; an unknown episode 404.
Repeating a command is safe: it answers 200 with the current state and emits nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Response
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from rcm_contracts.registration import ClinicalDocumentation, Person

from .domain import (
    GUARANTOR_ID,
    PATIENT_ID,
    Conflict,
    CoverageDraft,
    UnknownEpisode,
    coverage_list_problems,
    npi_problem,
    person_problems,
)
from .handlers import Registration


def _valid_npi(value: str) -> str:
    if problem := npi_problem(value):
        raise ValueError(problem)
    return value


NpiField = Annotated[str, Field(pattern=r"^\d{10}$"), AfterValidator(_valid_npi)]


def _today() -> date:
    return datetime.now(UTC).date()


def _no_problems(problems: list[str]) -> None:
    if problems:
        raise ValueError("; ".join(problems))


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppointmentRequest(Request):
    patient_id: str | None = Field(
        default=None, pattern=PATIENT_ID, description="A returning patient's id; else new."
    )
    scheduled_start: AwareDatetime = Field(description="With a zone; stored in UTC.")
    rendering_provider_npi: NpiField
    visit_type: str = Field(min_length=1, max_length=40)


class AppointmentCreated(BaseModel):
    episode_id: str
    appointment_id: str
    patient_id: str


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


class CancelRequest(Request):
    reason: str = Field(min_length=1, max_length=200)


@contextlib.contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except UnknownEpisode as error:
        raise HTTPException(404, str(error)) from None
    except Conflict as error:
        raise HTTPException(409, str(error)) from None


def router(registration: Registration) -> APIRouter:
    api = APIRouter(tags=["registration"])

    @api.post("/appointments", status_code=201)
    async def schedule(
        body: AppointmentRequest,
        response: Response,
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=200, description="Resubmission guard.")
        ] = None,
    ) -> AppointmentCreated:
        """Opens an episode. With an Idempotency-Key, the same request again answers 200
        with the same ids; another request under that key is a 409."""
        with _http_errors():
            episode, created = await registration.schedule(
                body.scheduled_start,
                body.rendering_provider_npi,
                body.visit_type,
                body.patient_id,
                idempotency_key,
            )
        if not created:
            response.status_code = 200
        return AppointmentCreated(
            episode_id=episode.episode_id,
            appointment_id=episode.appointment.appointment_id,
            patient_id=episode.patient_id,
        )

    @api.post("/episodes/{episode_id}/registration")
    async def register(episode_id: str, body: RegistrationRequest) -> dict[str, Any]:
        with _http_errors():
            episode = await registration.register(
                episode_id, body.patient, body.guarantor_id, body.coverages
            )
        return episode.view()

    @api.put("/episodes/{episode_id}/coverages")
    async def coverages(episode_id: str, body: CoveragesRequest) -> dict[str, Any]:
        with _http_errors():
            episode = await registration.update_coverages(episode_id, body.coverages)
        return episode.view()

    @api.post("/episodes/{episode_id}/check-in")
    async def check_in(episode_id: str) -> dict[str, Any]:
        with _http_errors():
            episode = await registration.check_in(episode_id)
        return episode.view()

    @api.post("/episodes/{episode_id}/encounter")
    async def encounter(episode_id: str, body: EncounterRequest) -> dict[str, Any]:
        with _http_errors():
            episode = await registration.complete_encounter(
                episode_id,
                body.place_of_service,
                body.rendering_provider_npi,
                body.documentation,
            )
        return episode.view()

    @api.post("/episodes/{episode_id}/cancel")
    async def cancel(episode_id: str, body: CancelRequest) -> dict[str, Any]:
        with _http_errors():
            episode = await registration.cancel(episode_id, body.reason)
        return episode.view()

    @api.get("/episodes/{episode_id}")
    async def get(episode_id: str) -> dict[str, Any]:
        with _http_errors():
            episode = await registration.get(episode_id)
        return episode.view()

    return api
