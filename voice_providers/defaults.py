"""Retry and timeout defaults, in one place; settings may override each of them."""

from __future__ import annotations

from typing import Final

#: Total tries of one "start call" POST, the first included.
RETRY_ATTEMPTS: Final = 3
#: First backoff, in seconds; doubles each retry.
RETRY_WAIT_INITIAL: Final = 0.5
#: Largest backoff between two tries, in seconds.
RETRY_WAIT_MAX: Final = 5.0
#: Random jitter added to each backoff, in seconds.
RETRY_WAIT_JITTER: Final = 0.5
#: A provider's Retry-After is honoured up to this many seconds; beyond it we stop waiting.
RETRY_AFTER_CAP: Final = 10.0
#: Give up retrying after this many seconds in all.
RETRY_TIMEOUT: Final = 30.0
#: Per the specification, a provider POST may take up to 30 seconds.
POST_TIMEOUT: Final = 30.0
#: Connecting should be quick; a slow connect is retried.
CONNECT_TIMEOUT: Final = 5.0
#: Waiting for a free pooled connection.
POOL_TIMEOUT: Final = 5.0
#: Seconds a caller is told to wait (``Retry-After``) when the provider's concurrent-call limit
#: is reached and it named no sane wait: such a limit clears when live calls end (minutes).
AT_CAPACITY_RETRY_AFTER: Final = 60.0
#: A provider's own ``Retry-After`` on such an answer is used when within these bounds.
AT_CAPACITY_RETRY_AFTER_MIN: Final = 1.0
AT_CAPACITY_RETRY_AFTER_MAX: Final = 3600.0
