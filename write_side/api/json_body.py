"""Command bodies: `application/json` only, decoded by msgspec in strict mode straight from the bytes.

Litestar decodes a JSON body into plain Python values and then converts them in lax mode, so
`"expected_version": "3"` would pass as 3 and a JSON number would pass through `float` on its way
to `Decimal`. `StrictJSON[Model]`, given as a handler's `dto=`, decodes the raw bytes into the
Struct in one strict pass instead: a JSON number becomes a `Decimal` from its text (also where the
field is untyped, like `amount`), a string where an integer belongs is refused (400). Any content type but `application/json` (optionally with
`charset=utf-8`) is refused with 415 before the body is looked at. The OpenAPI schema of the body
is the Struct's own, plus `additionalProperties: false` (the decoder refuses unknown fields).
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec
from litestar.dto import MsgspecDTO
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.spec import Reference, Schema
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

StructT = TypeVar("StructT", bound=msgspec.Struct)

JSON_ONLY = "the request body must be JSON, sent as 'Content-Type: application/json'"


def check_json_content_type(header: str | None) -> None:
    """415 unless the content type is `application/json`, with at most a UTF-8 charset."""
    media_type, *parameters = (header or "").split(";")
    if media_type.strip().lower() != "application/json":
        raise HTTPException(status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=JSON_ONLY)
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            raise HTTPException(
                status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail="JSON bodies must be UTF-8"
            )


@cache
def _decoder(target: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(target, strict=True, float_hook=Decimal)


class StrictJSON(MsgspecDTO[StructT], Generic[StructT]):
    """`@post(..., dto=StrictJSON[Model], return_dto=None)` with `data: Model` on the handler."""

    def decode_bytes(self, value: bytes) -> Any:
        check_json_content_type(self.asgi_connection.headers.get("content-type"))
        data_field = self.asgi_connection.route_handler.parsed_data_field
        target = data_field.annotation if data_field is not None else self.model_type
        try:
            return _decoder(target).decode(value)
        except msgspec.DecodeError as exc:  # ValidationError included: both say what and where
            raise ValidationException(
                detail="the request body is not valid", extra=[{"message": str(exc)}]
            ) from None

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        schema: Reference | Schema = schema_creator.for_field_definition(field_definition)
        if cls.model_type.__struct_config__.forbid_unknown_fields:  # Litestar leaves this out
            model = FieldDefinition.from_annotation(cls.model_type)
            registered = schema_creator.schema_registry.get_schema_for_field_definition(model)
            registered.additional_properties = False
        return schema
