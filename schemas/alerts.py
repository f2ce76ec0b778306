"""Alerts: what the detector raises, and their CloudEvents envelope.

Webhooks carry the envelope in structured mode (``application/cloudevents+json``);
topic ``lapse.alerts.v1`` uses the Kafka protocol binding.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

AlertType = Literal["at_risk", "escalated", "recovered", "churned", "win_back_due"]
# The pre-churn types, what a webhook subscription gets by default. ``win_back_due`` (a former
# member's time to be asked back came, docs/after-they-leave.md) is opt-in: name it.
ALERT_TYPES: tuple[AlertType, ...] = ("at_risk", "escalated", "recovered", "churned")
Severity = Literal["low", "medium", "high"]
# Where an alert comes from: raised on the live stream, or while Lapse caught up with a club's
# imported history (``lapse import``), when only the episodes still open at the end are sent.
Origin = Literal["live", "history"]
# The episode's arm of the tenant's holdout (issue 22, docs/webhooks.md "Control group"):
# ``control`` episodes are held back (never sent); everything sent is ``contact``.
Arm = Literal["contact", "control"]
# The JSON Schema of an alert (the ``data``), schemas/json/alert.v1.json, at its ``$id``. Every
# envelope names it: CloudEvents 1.0 allows ``dataschema`` to be absent but not null (the
# SDK's strict readers refuse ``"dataschema": null``), and a receiver can validate by it.
ALERT_DATASCHEMA: Final = "https://lapse.io/schemas/alert.v1.json"


def cloudevent_type(alert_type: str) -> str:
    return f"io.lapse.member.{alert_type}.v1"


class Reason(BaseModel):
    """Why an alert was raised: a machine-readable code plus the figures behind it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(examples=["absent_beyond_threshold"])
    figures: dict[str, float | int | str | None] = Field(default_factory=dict)


class Alert(BaseModel):
    """The alert payload (the CloudEvent ``data``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert_id: str = Field(description="Deterministic: the same episode and type give the same id.")
    episode_id: str = Field(description="Deterministic from tenant, member and episode start.")
    type: AlertType
    tenant_id: str
    member_id: str
    site_id: str | None
    severity: Severity
    policy: str
    reasons: list[Reason]
    deadline: AwareDatetime | None = Field(
        description="When the member's absence passed (or will pass) what is normal for them."
    )
    raised_at: AwareDatetime = Field(description="When the condition occurred, in event time.")
    origin: Origin = Field(
        default="live",
        description=(
            "`history`: raised while Lapse caught up with the club's imported history "
            "(`lapse import`); such an alert is sent once, for an episode still open when the "
            "import caught up (the member is at risk today; `raised_at` may be long ago). "
            "`live`: raised on the live stream."
        ),
    )
    arm: Arm = Field(
        default="contact",
        description=(
            "The episode's group in the tenant's holdout, drawn once when the episode opened: "
            "`contact` (staff are told; every alert sent to a webhook or the alerts topic) or "
            "`control` (held back to measure whether reaching out helps: stored and listed "
            "by the API as held back, never sent). Absent in alerts stored before the "
            "holdout existed: read as `contact`."
        ),
    )


class AlertCloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode envelope around an :class:`Alert`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    subject: str
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: Literal["https://lapse.io/schemas/alert.v1.json"] = ALERT_DATASCHEMA
    data: Alert

    @classmethod
    def wrap(cls, alert: Alert) -> AlertCloudEvent:
        return cls(
            id=alert.alert_id,
            source=f"/lapse/{alert.tenant_id}",
            type=cloudevent_type(alert.type),
            subject=f"members/{alert.member_id}",
            time=alert.raised_at,
            data=alert,
        )
