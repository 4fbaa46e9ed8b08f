"""Feed and report documents, and the presigned URLs that move them.

Amazon keeps documents in S3 and hands out presigned URLs that expire after five minutes;
the upload URL is signed for the Content-Type declared in ``createFeedDocument``. The
simulator serves those URLs itself (no SP-API auth on them, as with S3) and answers the way
S3 does when a client is late or sends another Content-Type, so a client that caches URLs or
forgets the header fails here the way it would fail against Amazon.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from marketsync.core import clock

from .gateway import world_of

if TYPE_CHECKING:
    from .catalog import Catalog

PATH = "/_documents/{document_id}"
MAX_UPLOAD_BYTES = 10 * 1024 * 1024     # Amazon's advice for feeds: keep them under 10 MiB
_URL_GRACE = timedelta(hours=1)         # expired URLs still answer "expired", then vanish


@dataclass
class Document:
    document_id: str
    seller_id: str
    content_type: str
    created: datetime
    content: bytes | None = None        # stored bytes (gzip-compressed when compression)
    compression: str | None = None      # "GZIP" or None
    used_by: str | None = None          # the feed that consumed an uploaded document


@dataclass
class _Presigned:
    document_id: str
    method: str
    expires: datetime
    content_encoding: bool = False


class DocumentStore:
    """Uploaded feed documents and generated result/report documents, by id."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.documents: dict[str, Document] = {}
        self._urls: dict[str, _Presigned] = {}

    def create_upload(self, seller_id: str, content_type: str, now: datetime) -> tuple[Document, str]:
        """A new empty feed document and its upload (PUT) URL."""
        document = Document(self._new_id("amzn1.tortuga.4"), seller_id, content_type, now)
        self.documents[document.document_id] = document
        return document, self._presign(document, "PUT", now)

    def store_generated(self, seller_id: str, content: bytes, content_type: str, now: datetime,
                        *, compress: bool, prefix: str = "amzn1.tortuga.4") -> Document:
        """A document Amazon wrote (processing report, report file)."""
        document = Document(self._new_id(prefix), seller_id, content_type, now,
                            gzip.compress(content, mtime=0) if compress else content,
                            "GZIP" if compress else None)
        self.documents[document.document_id] = document
        return document

    def download_url(self, document: Document, now: datetime, *, content_encoding: bool) -> str:
        return self._presign(document, "GET", now, content_encoding)

    def get(self, seller_id: str, document_id: str) -> Document | None:
        """The seller's document; another seller's id is as unknown as a made-up one."""
        document = self.documents.get(document_id)
        return document if document is not None and document.seller_id == seller_id else None

    def expire(self, now: datetime) -> None:
        for token in [t for t, p in self._urls.items() if p.expires + _URL_GRACE < now]:
            del self._urls[token]

    def _new_id(self, prefix: str) -> str:
        rng = self.catalog.rng
        hexes = "".join(rng.choice("0123456789abcdef") for _ in range(32))
        return f"{prefix}.{hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"

    def _presign(self, document: Document, method: str, now: datetime,
                 content_encoding: bool = False) -> str:
        ttl = self.catalog.timing.document_url_ttl
        signature = self.catalog.new_token(64).lower()
        self._urls[signature] = _Presigned(document.document_id, method, now + ttl,
                                           content_encoding)
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": now.strftime("%Y%m%dT%H%M%SZ"),
            "X-Amz-SignedHeaders": "content-type;host" if method == "PUT" else "host",
            "X-Amz-Expires": str(int(ttl.total_seconds())),
            "X-Amz-Signature": signature,
        }
        if content_encoding:
            query["response-content-encoding"] = "gzip"
        path = PATH.format(document_id=document.document_id)
        return f"{self.catalog.world.base_url.rstrip('/')}{path}?{urlencode(query)}"

    def check(self, request: Request, method: str) -> tuple[Document | None, _Presigned | Response]:
        """Resolve a presigned request, or the S3-style refusal."""
        presigned = self._urls.get(request.query_params.get("X-Amz-Signature", ""))
        document_id = request.path_params["document_id"]
        if presigned is None or presigned.document_id != document_id or presigned.method != method:
            return None, s3_error(403, "SignatureDoesNotMatch", "The request signature we "
                                  "calculated does not match the signature you provided.")
        if self.catalog.world.now() > presigned.expires:
            return None, s3_error(403, "AccessDenied", "Request has expired")
        return self.documents[document_id], presigned


def s3_error(status: int, code: str, message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>")
    return Response(body, status_code=status, media_type="application/xml")


async def upload(request: Request) -> Response:
    store = world_of(request).catalog.documents
    document, outcome = store.check(request, "PUT")
    if document is None:
        assert isinstance(outcome, Response)
        return outcome
    sent_type = request.headers.get("content-type", "")
    if sent_type.replace(" ", "").lower() != document.content_type.replace(" ", "").lower():
        return s3_error(403, "SignatureDoesNotMatch",
                        f"The Content-Type {sent_type!r} is not the one the URL was signed for "
                        f"({document.content_type!r}).")
    if document.used_by is not None:
        return s3_error(403, "AccessDenied", "The document was already submitted as a feed.")
    body = await request.body()
    if len(body) > MAX_UPLOAD_BYTES:
        return s3_error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum "
                        "allowed size.")
    document.content = body
    return Response(status_code=200, headers={"ETag": f'"{len(body):x}"'})


async def download(request: Request) -> Response:
    store = world_of(request).catalog.documents
    document, outcome = store.check(request, "GET")
    if document is None:
        assert isinstance(outcome, Response)
        return outcome
    assert not isinstance(outcome, Response)
    headers = {"Last-Modified": clock.isoformat(document.created)}
    if document.compression == "GZIP" and outcome.content_encoding:
        headers["Content-Encoding"] = "gzip"
    return Response(document.content or b"", media_type=document.content_type, headers=headers)


def routes(catalog: Catalog) -> list[BaseRoute]:
    return [Route(PATH, upload, methods=["PUT"]), Route(PATH, download, methods=["GET"])]
