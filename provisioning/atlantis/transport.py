"""HTTP to Atlantis: one POST per call, and its failures classified by what they mean for the request.

- `POST /api/plan` or `/api/apply`, the token in the `X-Atlantis-Token` header of that one request and nowhere else.
- A fresh client (and connection) per call: a reused keep-alive connection that the server closed would fail like a
  dropped answer, and an apply would wrongly be reported as unanswered.
- Redirects are not followed: a 3xx is an answer like any other non-200, a failure, and following it would carry the
  token to another address.
- The read timeout is the command's own: Atlantis answers in one synchronous call, after the whole plan or apply.
- Failures: `NotSent` when nothing can have reached Atlantis (no connection, a request that cannot be built), so the
  call can be made again; `Unanswered` when the request may have reached Atlantis but no answer came back (a timeout
  or a connection dropped after sending), so Atlantis may have done the work.
"""

from __future__ import annotations

import functools
import ssl

import httpx

from provisioning.atlantis.config import AtlantisConfig

TOKEN_HEADER = "X-Atlantis-Token"
# Sending a request body of a few hundred bytes never takes long; a stuck write is a dead connection.
WRITE_TIMEOUT = 30
# Waiting for a connection from the client's own pool; a fresh client has one to give at once.
POOL_TIMEOUT = 5


class NotSent(Exception):
    """Nothing reached Atlantis. The message is for people."""


class Unanswered(Exception):
    """The request was sent, or may have been, and no answer came back. The message is for people."""


def longest_call(config: AtlantisConfig, command: str) -> float:
    """The most time one `command` call can take before post() gives up, in seconds."""
    return config.connect_timeout + WRITE_TIMEOUT + config.timeout(command)


def post(config: AtlantisConfig, command: str, body: bytes) -> tuple[int, bytes]:
    """Send `body` to Atlantis's `command` endpoint: (HTTP status, response body), or NotSent / Unanswered."""
    timeout = httpx.Timeout(
        connect=config.connect_timeout, read=config.timeout(command), write=WRITE_TIMEOUT, pool=POOL_TIMEOUT
    )
    headers = {"Content-Type": "application/json", "Accept": "application/json", TOKEN_HEADER: config.token}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, verify=_ssl_context()) as client:
            response = client.post(f"{config.url}/api/{command}", content=body, headers=headers)
            return response.status_code, response.content
    except httpx.LocalProtocolError as error:
        raise NotSent(f"the request to Atlantis could not be built ({error}); nothing was sent") from None
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol) as error:
        raise NotSent(
            f"Atlantis at {config.url} is unreachable ({type(error).__name__}: {error}); nothing was sent."
        ) from None
    except httpx.ProxyError as error:
        raise NotSent(f"the proxy to Atlantis at {config.url} refused the connection: {error}") from None
    except httpx.ReadTimeout:
        raise Unanswered(f"no answer within {config.timeout(command):.0f} s (timed out)") from None
    except httpx.WriteTimeout:
        raise Unanswered("timed out while sending the request") from None
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError) as error:
        raise Unanswered(f"the connection dropped before Atlantis answered ({type(error).__name__}: {error})") from None
    except httpx.TransportError as error:
        raise Unanswered(f"the request failed after it was sent ({type(error).__name__}: {error})") from None


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Built once: loading the CA bundle costs more than a plan request's own overhead. SSL_CERT_FILE/SSL_CERT_DIR
    # are honoured as httpx honours them.
    return httpx.create_ssl_context()
