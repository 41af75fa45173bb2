"""The one place that reads the environment.

Every process (API, slot worker, control worker, beat, recorder, demo) calls
``Settings.from_env()`` once and passes the object on.  Defaults are the embedded
ones used by ``make demo``: a SQLite file, a local profile folder and the simulator.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list ("STOP, UNSUBSCRIBE, बंद करो"); unset or empty: ``default``."""
    if value is None or not value.strip():
        return default
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite:///{ROOT / 'var' / 'wa.db'}"
    redis_url: str = "redis://127.0.0.1:6379/0"
    wa_web_url: str = "http://127.0.0.1:3100/"

    # Profile store: S3 when a bucket is named, otherwise a local folder.
    profile_dir: str = str(ROOT / "var" / "profiles")
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_prefix: str = "wa-profiles/"  # key prefix of the archives in the bucket
    s3_sse: str | None = None  # server-side encryption: "AES256" or "aws:kms"
    s3_kms_key_id: str | None = None  # with aws:kms
    s3_create_bucket: bool = False  # create the bucket when missing (local MinIO / moto)
    backup_interval: float = 300.0  # seconds between backups of a READY session (at least 60)
    keep_versions: int = 3  # archives kept per session

    # Browser slots.
    slot_name: str = "slot-1"
    slot_capacity: int = 10
    slot_host: str | None = None  # the host name the slot registers (default: the machine's)
    slot_heartbeat_ttl: int = 15
    chromium_path: str = "/usr/bin/chromium"
    chromedriver_path: str = "/usr/bin/chromedriver"
    headless: bool = True
    # Chrome's sandbox: "auto" (on unless running as root or user namespaces are
    # forbidden, see browser.chrome.chrome_sandbox), "true" or "false".
    chrome_sandbox: str = "auto"
    user_agent: str = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
    )
    browser_work_dir: str = str(ROOT / "var" / "browsers")
    page_probe_interval: float = 0.3
    ready_probe_interval: float = 2.0  # a READY page is looked at this often (acks are seen within it)
    send_timeout: float = 20.0
    max_qr_attempts: int = 5  # clicks on "reload QR" before the session gives up (QR_TIMEOUT)
    probe_timeout: float = 10.0  # a page probe slower than this means Chrome hangs (BROWSER_CRASHED)
    conflict_policy: str = "takeover"  # "takeover" (answer "Use here") or "disconnect" (CONFLICT)
    max_takeovers: int = 3  # takeovers per browser before the session gives up (CONFLICT)

    # Media attached to messages (media_urls, inline media).
    media_max_mb: int = 16  # photos and videos
    document_max_mb: int = 100
    media_fetch_timeout: float = 30.0
    request_max_mb: int = 24  # API request bodies, inline base64 media included
    media_allow_networks: str = ""  # CIDRs / host names exempt from the SSRF guard, e.g. 127.0.0.0/8
    # Hours an inline file is kept in the media store (beside the saved logins) after its
    # send was accepted; from_env makes it at least message_max_age_hours.
    media_ttl_hours: float = 48.0

    # API behaviour.
    default_region: str = "IN"
    qr_wait_seconds: float = 30.0
    # initialize waits this long for the first QR (or READY from a saved login) and answers
    # with it, as the seed's "QR Code Ready" response; 0: answer at once (INITIALIZING).
    initialize_qr_wait: float = 10.0
    send_wait_max: float = 60.0
    api_key_cache_seconds: float = 30.0
    auth_failures_per_minute: int = 30  # failed API key attempts per client address (0: no limit)
    # Proxies in front of the API that append to X-Forwarded-For: the client address (the
    # failed-key limit's) is that many entries from the right. 0: the connection's address.
    trusted_proxy_hops: int = 0
    # The Celery entry points (wa.api.*) refuse a call without an ``api_key`` argument.
    api_tasks_require_key: bool = False
    # Bearer token that shows /metrics and /webjs/health in full (per session, host names);
    # admin API keys do too. Without either, both show aggregate figures only.
    metrics_token: str | None = None
    # Linking pages for end users (/link/<token>): how long a link lives, and the key its
    # tokens are signed with (unset: one is generated once and kept in Redis).
    link_page_ttl: float = 900.0
    link_page_secret: str | None = None
    # Where end users reach the API (e.g. https://wa.example.com behind a proxy): the base of
    # the links handed out; unset, the host and scheme the API request came with.
    link_page_base_url: str | None = None
    # Linking pages that may hold a live event stream at once, per API process (each holds
    # a thread); the pages beyond poll /state instead.
    link_page_streams: int = 4

    # Session lifecycle.
    auto_recover: bool = True  # sessions of a dead, restarted or stopped slot are placed again
    idle_timeout_minutes: float = 0.0  # stop READY sessions idle this long (0: never)
    stuck_timeout_seconds: float = 600.0  # stop sessions INITIALIZING / QR_READY this long
    # A page the driver cannot classify this long is reported (UNKNOWN_PAGE); after
    # stuck_timeout_seconds its browser is recycled with the login saved.
    unknown_page_grace: float = 15.0
    memory_ceiling_mb: int = 0  # recycle a browser whose process tree uses more (0: never)
    max_crash_restarts: int = 3  # a crashed browser is started again from its login this often per hour

    # Pacing per session (defaults; a session can set its own), circuit breaker, bulk.
    pacing_min_gap: float = 1.0  # seconds between two sends of a session, at least...
    pacing_max_gap: float = 2.0  # ...and at most (random in between), as the seed
    hourly_cap: int = 100  # sends per session per rolling hour (the seed's RateLimitService)
    daily_cap: int = 1000  # per rolling 24 h; 0 = none
    breaker_threshold: int = 5  # failures in a row that open a session's circuit (the seed)
    breaker_cooldown: float = 60.0
    # A session WhatsApp restricts (new-chat timelock or cap, temporary ban) pauses its
    # sends; they are tried again this often (seconds) unless the page says sooner.
    restriction_recheck_seconds: float = 300.0
    bulk_max_messages: int = 50
    # Number checks (POST /webjs/sessions/{id}/contacts/check): WhatsApp limits its
    # existence query too, so checks are paced per session, apart from sends.
    contact_check_cache_seconds: float = 86400.0  # an answer is reused this long (0: never)
    slot_answer_wait_seconds: float = 30.0  # the API waits this long for a slot to answer (number checks, chat reads)
    contact_check_min_gap: float = 0.5  # seconds between two checks of a session, at least...
    contact_check_max_gap: float = 1.5  # ...and at most
    contact_check_hourly_cap: int = 300  # checks per session per rolling hour; 0 = none
    contact_check_daily_cap: int = 2000  # per rolling 24 h; 0 = none
    # Incoming texts that put their sender on the session's opt-out list, matched
    # case-insensitively against the whole text (models/optouts.py).
    opt_out_keywords: tuple[str, ...] = ("STOP", "STOP ALL", "STOPALL", "UNSUBSCRIBE", "UNSUB", "CANCEL", "END",
                                         "QUIT", "OPT OUT", "OPT-OUT", "OPTOUT", "बंद करो", "बंद")
    message_max_age_hours: float = 24.0  # a message whose session never came back fails then
    idempotency_hours: float = 24.0  # how long an Idempotency-Key is remembered

    # Webhooks (callback_url per job and per session).
    webhook_secret: str | None = None  # HMAC-SHA256 key; without it webhooks are sent unsigned
    webhook_timeout: float = 10.0
    webhook_max_age_hours: float = 24.0  # retries stop this long after the event
    webhook_allow_networks: str = ""  # CIDRs / host names exempt from the SSRF guard

    # Queues and retries.
    task_max_retries: int = 3
    visibility_timeout: int = 3600
    dispatch_grace_seconds: int = 60

    log_level: str = "INFO"
    log_format: str = "text"  # "text" (key=value ids) or "json" (one object per line): see logs.py

    def __post_init__(self) -> None:
        if self.conflict_policy not in ("takeover", "disconnect"):
            raise ValueError(f"CONFLICT_POLICY must be takeover or disconnect, not {self.conflict_policy!r}")
        if self.chrome_sandbox not in ("auto", "true", "false"):
            raise ValueError(f"CHROME_SANDBOX must be auto, true or false, not {self.chrome_sandbox!r}")
        if self.log_format not in ("text", "json"):
            raise ValueError(f"LOG_FORMAT must be text or json, not {self.log_format!r}")

    @classmethod
    def from_env(cls, env: os._Environ | dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        d = cls()

        def get(name: str, default):
            value = env.get(name)
            return default if value in (None, "") else value

        return cls(
            database_url=get("DATABASE_URL", d.database_url),
            redis_url=get("REDIS_URL", d.redis_url),
            wa_web_url=get("WA_WEB_URL", d.wa_web_url),
            profile_dir=get("PROFILE_DIR", d.profile_dir),
            s3_bucket=get("S3_BUCKET", None),
            s3_endpoint_url=get("S3_ENDPOINT_URL", None),
            s3_region=get("S3_REGION", d.s3_region),
            s3_prefix=get("S3_PREFIX", d.s3_prefix),
            s3_sse=get("S3_SSE", None),
            s3_kms_key_id=get("S3_KMS_KEY_ID", None),
            s3_create_bucket=_bool(env.get("S3_CREATE_BUCKET"), d.s3_create_bucket),
            backup_interval=max(60.0, float(get("BACKUP_INTERVAL", d.backup_interval))),
            keep_versions=max(2, int(get("KEEP_VERSIONS", d.keep_versions))),
            slot_name=get("SLOT_NAME", d.slot_name),
            slot_capacity=int(get("SLOT_CAPACITY", d.slot_capacity)),
            slot_host=get("SLOT_HOST", None),
            slot_heartbeat_ttl=int(get("SLOT_HEARTBEAT_TTL", d.slot_heartbeat_ttl)),
            chromium_path=get("CHROMIUM_PATH", d.chromium_path),
            chromedriver_path=get("CHROMEDRIVER_PATH", d.chromedriver_path),
            headless=_bool(env.get("HEADLESS"), d.headless),
            chrome_sandbox=get("CHROME_SANDBOX", d.chrome_sandbox).lower(),
            user_agent=get("BROWSER_USER_AGENT", d.user_agent),
            browser_work_dir=get("BROWSER_WORK_DIR", d.browser_work_dir),
            page_probe_interval=float(get("PAGE_PROBE_INTERVAL", d.page_probe_interval)),
            ready_probe_interval=float(get("READY_PROBE_INTERVAL", d.ready_probe_interval)),
            send_timeout=float(get("SEND_TIMEOUT", d.send_timeout)),
            max_qr_attempts=int(get("MAX_QR_ATTEMPTS", d.max_qr_attempts)),
            probe_timeout=float(get("PROBE_TIMEOUT", d.probe_timeout)),
            conflict_policy=get("CONFLICT_POLICY", d.conflict_policy).lower(),
            max_takeovers=int(get("MAX_TAKEOVERS", d.max_takeovers)),
            media_max_mb=int(get("MEDIA_MAX_MB", d.media_max_mb)),
            document_max_mb=int(get("DOCUMENT_MAX_MB", d.document_max_mb)),
            media_fetch_timeout=float(get("MEDIA_FETCH_TIMEOUT", d.media_fetch_timeout)),
            request_max_mb=int(get("REQUEST_MAX_MB", d.request_max_mb)),
            media_allow_networks=get("MEDIA_ALLOW_NETWORKS", d.media_allow_networks),
            # An hour longer than a message may wait: the sweeper may dispatch it just before
            # MESSAGE_MAX_AGE_HOURS and the slot hold it a few minutes more.
            media_ttl_hours=max(float(get("MEDIA_TTL_HOURS", d.media_ttl_hours)),
                                float(get("MESSAGE_MAX_AGE_HOURS", d.message_max_age_hours)) + 1),
            default_region=get("DEFAULT_PHONE_REGION", d.default_region).upper(),
            qr_wait_seconds=float(get("QR_WAIT_SECONDS", d.qr_wait_seconds)),
            initialize_qr_wait=max(0.0, float(get("INITIALIZE_QR_WAIT", d.initialize_qr_wait))),
            send_wait_max=float(get("SEND_WAIT_MAX", d.send_wait_max)),
            api_key_cache_seconds=float(get("API_KEY_CACHE_SECONDS", d.api_key_cache_seconds)),
            auth_failures_per_minute=int(get("AUTH_FAILURES_PER_MINUTE", d.auth_failures_per_minute)),
            trusted_proxy_hops=max(0, int(get("TRUSTED_PROXY_HOPS", d.trusted_proxy_hops))),
            api_tasks_require_key=_bool(env.get("API_TASKS_REQUIRE_KEY"), d.api_tasks_require_key),
            metrics_token=get("METRICS_TOKEN", None),
            link_page_ttl=max(60.0, float(get("LINK_PAGE_TTL", d.link_page_ttl))),
            link_page_secret=get("LINK_PAGE_SECRET", None),
            link_page_base_url=(get("LINK_PAGE_BASE_URL", "") or "").rstrip("/") or None,
            link_page_streams=max(0, int(get("LINK_PAGE_STREAMS", d.link_page_streams))),
            auto_recover=_bool(env.get("AUTO_RECOVER"), d.auto_recover),
            idle_timeout_minutes=float(get("IDLE_TIMEOUT_MINUTES", d.idle_timeout_minutes)),
            stuck_timeout_seconds=float(get("STUCK_TIMEOUT_SECONDS", d.stuck_timeout_seconds)),
            unknown_page_grace=float(get("UNKNOWN_PAGE_GRACE", d.unknown_page_grace)),
            memory_ceiling_mb=int(get("MEMORY_CEILING_MB", d.memory_ceiling_mb)),
            max_crash_restarts=int(get("MAX_CRASH_RESTARTS", d.max_crash_restarts)),
            pacing_min_gap=float(get("PACING_MIN_GAP", d.pacing_min_gap)),
            pacing_max_gap=float(get("PACING_MAX_GAP", d.pacing_max_gap)),
            hourly_cap=int(get("HOURLY_CAP", d.hourly_cap)),
            daily_cap=int(get("DAILY_CAP", d.daily_cap)),
            breaker_threshold=int(get("BREAKER_THRESHOLD", d.breaker_threshold)),
            breaker_cooldown=float(get("BREAKER_COOLDOWN", d.breaker_cooldown)),
            restriction_recheck_seconds=float(get("RESTRICTION_RECHECK_SECONDS", d.restriction_recheck_seconds)),
            bulk_max_messages=int(get("BULK_MAX_MESSAGES", d.bulk_max_messages)),
            contact_check_cache_seconds=float(get("CONTACT_CHECK_CACHE_SECONDS", d.contact_check_cache_seconds)),
            slot_answer_wait_seconds=float(get("SLOT_ANSWER_WAIT_SECONDS", d.slot_answer_wait_seconds)),
            contact_check_min_gap=float(get("CONTACT_CHECK_MIN_GAP", d.contact_check_min_gap)),
            contact_check_max_gap=float(get("CONTACT_CHECK_MAX_GAP", d.contact_check_max_gap)),
            contact_check_hourly_cap=int(get("CONTACT_CHECK_HOURLY_CAP", d.contact_check_hourly_cap)),
            contact_check_daily_cap=int(get("CONTACT_CHECK_DAILY_CAP", d.contact_check_daily_cap)),
            opt_out_keywords=_list(env.get("OPT_OUT_KEYWORDS"), d.opt_out_keywords),
            message_max_age_hours=float(get("MESSAGE_MAX_AGE_HOURS", d.message_max_age_hours)),
            idempotency_hours=float(get("IDEMPOTENCY_HOURS", d.idempotency_hours)),
            webhook_secret=get("WEBHOOK_SECRET", None),
            webhook_timeout=float(get("WEBHOOK_TIMEOUT", d.webhook_timeout)),
            webhook_max_age_hours=float(get("WEBHOOK_MAX_AGE_HOURS", d.webhook_max_age_hours)),
            webhook_allow_networks=get("WEBHOOK_ALLOW_NETWORKS", d.webhook_allow_networks),
            task_max_retries=int(get("TASK_MAX_RETRIES", d.task_max_retries)),
            visibility_timeout=int(get("VISIBILITY_TIMEOUT", d.visibility_timeout)),
            dispatch_grace_seconds=int(get("DISPATCH_GRACE_SECONDS", d.dispatch_grace_seconds)),
            log_level=get("LOG_LEVEL", d.log_level).upper(),
            log_format=get("LOG_FORMAT", d.log_format).lower(),
        )

    @property
    def slot_queue(self) -> str:
        return slot_queue(self.slot_name)


CONTROL_QUEUE = "control"  # the control worker's queue: beat's tasks, wa.api.*, sweeps


def slot_queue(slot_name: str) -> str:
    """The queue of one slot worker: only it consumes it."""
    return f"slot.{slot_name}"
