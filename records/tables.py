"""The tables. One metadata for every service; Alembic migrations follow it.

Member state, consumer offsets and new alerts are written by the detector in one
transaction per checkpoint; the api reads alerts and owns subscriptions and deliveries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from records.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class ApiKey(Base):
    """An API key, stored as a SHA-256 digest (keys are 32 random bytes: no slow hash needed)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), index=True)
    site_id: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class MemberStateRow(Base):
    """The detector's state of one member; ``state`` holds the core's serialised form."""

    __tablename__ = "member_states"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer)
    site_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    last_visit: Mapped[datetime | None]
    deadline: Mapped[datetime | None]
    episode_id: Mapped[str | None] = mapped_column(String(36))
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_member_states_partition", "partition"),)


class ConsumerOffset(Base):
    """The next offset to read per partition, committed with the state it produced."""

    __tablename__ = "consumer_offsets"

    group_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    # The clock reading reached on this partition (the latest record time less the lateness).
    watermark: Mapped[datetime | None]
    # How far each site's gate data had reached, as the partition's ticks said (live, wall
    # clock): [[tenant, site, seconds], ...]; restored with the state (migration 0007_time).
    data_until: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    updated_at: Mapped[datetime]


class OnboardingRun(Base):
    """A club's imported history being caught up on one partition (``detector.onboarding``):
    between the importer's "started" and "finished" control records the tenant's records of
    the partition go to an onboarding detector on the history's own event time. Its member
    states are ordinary ``member_states`` rows; here its clock, the events it holds back and
    the records it consumed, written in the checkpoint's transaction."""

    __tablename__ = "onboarding_runs"

    group_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # running, finished
    started_offset: Mapped[int] = mapped_column(BigInteger)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class GateCoverage(Base):
    """Since when a detector partition sees a tenant's (``site_id`` empty) or a site's gate
    data: the first access event it applied and a start given explicitly (which wins).
    Written with the partition's checkpoint, loaded before its member states; the api reads
    the earliest per tenant and site ("no gate data before ...")."""

    __tablename__ = "gate_coverage"

    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(128), primary_key=True)  # "": the tenant
    first_seen: Mapped[datetime | None]
    given_start: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_gate_coverage_tenant", "tenant_id", "site_id"),)


class AlertRow(Base):
    """An alert, also the outbox for webhook fan-out."""

    __tablename__ = "alerts"

    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    member_id: Mapped[str] = mapped_column(String(128))
    site_id: Mapped[str | None] = mapped_column(String(128))
    episode_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    raised_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by the api's relay once the alerts topic acknowledged the alert (migration 0004_crm).
    relayed_at: Mapped[datetime | None] = mapped_column(index=True)
    # Raised while onboarding a club's history and not to be sent (migration 0007_onboarding):
    # stored as fanned out and relayed; released once if its episode is still open at the end.
    withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # The episode's arm of the tenant's holdout (migration 0010_holdout, issue 22): "control"
    # episodes are stored and scored but never sent nor listed for contact. Drawn once when
    # the episode opens (schemas/holdout.py) and copied to its every later alert.
    arm: Mapped[str] = mapped_column(String(8), default="contact", server_default="contact")

    __table_args__ = (
        Index("ix_alerts_tenant_created", "tenant_id", "created_at"),
        Index("ix_alerts_fanned_out", "fanned_out"),
        Index("ix_alerts_tenant_episode", "tenant_id", "episode_id"),
    )


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), index=True)
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]]
    site_id: Mapped[str | None] = mapped_column(String(128))
    # Needed to sign, so encrypted rather than hashed: ``fernet:<token>`` under
    # LAPSE_SECRET_KEY (records/sealing.py), or in clear when no key is set. Never logged nor
    # returned after creation. ``previous_secret`` likewise.
    secret: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # Migration 0004_crm: description, secret rotation overlap, automatic disabling.
    description: Mapped[str | None] = mapped_column(String(500))
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_until: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    failed_deliveries_in_row: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class WebhookDelivery(Base):
    """One alert to one subscription; its id is the ``webhook-id`` and is kept across retries."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    alert_id: Mapped[str] = mapped_column(String(36), ForeignKey("alerts.alert_id"))
    tenant_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # pending, succeeded, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    leased_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_subscription", "subscription_id", "created_at"),
    )


class DeliveryAttempt(Base):
    """The per-attempt log a CRM integrator reads when a webhook misbehaves."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float]
    response_excerpt: Mapped[str | None] = mapped_column(String(512))


class IngestedEvent(Base):
    """An event_id ingest saw the broker acknowledge: a client's retry is not produced again.

    Written only after the ack (a failed produce stays retryable); rows older than
    ``LAPSE_DEDUP_RETENTION_DAYS`` are purged by ingest.
    """

    __tablename__ = "ingested_events"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime]

    __table_args__ = (Index("ix_ingested_events_received_at", "received_at"),)


class SiteDataUntil(Base):
    """How far a site's gate data has reached: the latest event time ingest acknowledged from
    it. Written after the broker acknowledged those events, read by the detector into its
    ticks, so a tick never says a site is covered before its events are on the partitions
    (a controller back from offline uploads first; its members' absence waits for that)."""

    __tablename__ = "site_data_until"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    data_until: Mapped[datetime]
    updated_at: Mapped[datetime]


class Site(Base):
    """One club of a tenant, with its IANA time zone (for opening hours and local days)."""

    __tablename__ = "sites"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class ActionRow(Base):
    """What staff did about an episode (call, message, incentive, other), reported by a CRM."""

    __tablename__ = "actions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    episode_id: Mapped[str] = mapped_column(String(36))
    alert_id: Mapped[str] = mapped_column(String(36), ForeignKey("alerts.alert_id"))
    member_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    taken_at: Mapped[datetime]
    taken_by: Mapped[str] = mapped_column(String(36))  # the API key id

    __table_args__ = (
        Index("ix_actions_tenant_episode", "tenant_id", "episode_id"),
        Index("ix_actions_tenant_taken", "tenant_id", "taken_at"),
    )


class ImportRun(Base):
    """Progress of one ``lapse import`` of one file (migration 0003_import): resume after a crash.

    ``id`` is a digest of the tenant and the file's identity (absolute path, size, SHA-256 of
    its first MiB). ``last_line`` is the last line whose events the broker acknowledged, never
    further: a resumed run starts after it.
    """

    __tablename__ = "import_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), index=True)
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    head_sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # running, done
    last_line: Mapped[int] = mapped_column(BigInteger)
    accepted: Mapped[int] = mapped_column(BigInteger)
    rejected: Mapped[int] = mapped_column(BigInteger)
    rejected_by_reason: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class VendorIntegration(Base):
    """A vendor webhook feeding a tenant (migration 0003_import), e.g. one Kisi organisation.

    ``secret`` checks the vendor's requests (HMAC), so it must be read back: it is sealed with
    ``LAPSE_SECRET_KEY`` like webhook secrets (records/sealing.py), never logged nor returned.
    ``sites`` maps the vendor's place ids to our site ids. ``require_mapping`` (migration
    0008_external_ids): a user the tenant's member directory does not map is not taken as a
    member id but acknowledged and counted (``unmapped_user``).
    """

    __tablename__ = "vendor_integrations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    vendor: Mapped[str] = mapped_column(String(32))
    secret: Mapped[str] = mapped_column(String(400))
    sites: Mapped[dict[str, Any]]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    require_mapping: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (Index("ix_vendor_integrations_tenant_vendor", "tenant_id", "vendor"),)


class ExternalId(Base):
    """A member's id in another system of the club (migration 0008_external_ids), e.g. their
    Kisi user id: events that system sends about that id land on the club's member.

    One id per member and system, and one member per id and system (both unique per tenant).
    Personal data: erased with the member (records/erasure.py), never logged.
    """

    __tablename__ = "member_external_ids"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    system: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ux_member_external_ids_member", "tenant_id", "system", "member_id", unique=True),
    )


class ExitInterview(Base):
    """What staff recorded when a member left (migration 0005_leavers): the reason, a note,
    and whether the member agrees to be contacted again. The cancellation event's own reason
    stays in the member state; this row, when present, corrects it. Changes are kept in
    ``exit_interview_changes``."""

    __tablename__ = "exit_interviews"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    cancelled_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    contact_ok: Mapped[bool | None] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16))  # event, staff
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(36))  # the API key id


class ExitInterviewChange(Base):
    """One change of an exit interview: who (API key id), when, the values before and after."""

    __tablename__ = "exit_interview_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    member_id: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(36))
    old: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new: Mapped[dict[str, Any]]

    __table_args__ = (Index("ix_exit_interview_changes_member", "tenant_id", "member_id"),)


class WinbackPlanRow(Base):
    """A tenant's win-back plan: per exit reason, whether and after how long to try again."""

    __tablename__ = "winback_plans"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    rules: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(36))


class ForgottenMember(Base):
    """A tombstone of an erased member: a digest of ``tenant:member``, never the id itself.
    The detector checks it before creating a member state, so a replay cannot bring the
    member back."""

    __tablename__ = "forgotten_members"

    member_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), index=True)
    forgotten_at: Mapped[datetime]


class CalibrationReport(Base):
    """One ``lapse calibrate --store`` run (migration 0006_calibration): the staff page shows
    the latest per tenant. ``policy`` is the chosen policy as the detector's configuration
    file holds it; ``scores`` the figures behind the report (``Calibration.scores``);
    ``report_html`` the self-contained report page."""

    __tablename__ = "calibration_reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    policy: Mapped[dict[str, Any]]
    scores: Mapped[dict[str, Any]]
    report_html: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_calibration_reports_tenant_created", "tenant_id", "created_at"),)


class StaffAccount(Base):
    """A person who logs into the staff page (records/staff_accounts.py): one login name across
    the installation, bound to one tenant; the password only as an Argon2id hash."""

    __tablename__ = "staff_accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), index=True)
    login: Mapped[str] = mapped_column(String(254), unique=True)  # an email or a user name
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # front_desk | manager | admin
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    failed_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until: Mapped[datetime | None]
    # The page's language for this person (issue 20: Hebrew and English); None: the browser's.
    language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]


class StaffSession(Base):
    """A logged-in browser: the cookie holds a random token, this row only its SHA-256, so
    any api replica can check it and logout or disabling the account revokes it at once."""

    __tablename__ = "staff_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("staff_accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class MemberProfile(Base):
    """A member's optional profile for the staff (migration 0009_profiles): the name, phone,
    email, plan, photo and the club's CRM id that let the front desk call a person, not an id.

    Every field is optional (null: not known). Personal data: erased with the member
    (records/erasure.py), never logged, never in webhook payloads (records/profiles.py).
    """

    __tablename__ = "member_profiles"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    plan: Mapped[str | None] = mapped_column(String(100), nullable=True)
    photo_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    crm_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    updated_at: Mapped[datetime]


class HoldoutPeriodRow(Base):
    """One setting of a tenant's holdout (migration 0010_holdout, issue 22): from ``start``
    until ``end`` (null: in force), ``share`` of the episodes opened go to the control group.
    A change closes the period in force and opens another; stopping closes it. Rows are
    never rewritten otherwise, so a report can keep episodes drawn under different shares
    apart. ``set_by``/``ended_by``: the API key or staff account id; ``reason``: the
    manager's words."""

    __tablename__ = "holdout_periods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    start: Mapped[datetime]
    end: Mapped[datetime | None]
    share: Mapped[float] = mapped_column(Float)
    set_by: Mapped[str] = mapped_column(String(36))
    reason: Mapped[str | None] = mapped_column(Text)
    ended_by: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (Index("ix_holdout_periods_tenant_start", "tenant_id", "start"),)
