"""Parser for Graph's `fields` syntax: `a,b,edge.limit(5).after(X){c,d{e}}`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import bad_param

_NAME = re.compile(r"[A-Za-z0-9_]+")
_ARG = re.compile(r"[^()]*")


@dataclass
class FieldSpec:
    """One requested field, its modifiers and, for expansions, its sub-fields."""

    name: str
    modifiers: dict[str, str] = field(default_factory=dict)
    children: list[FieldSpec] | None = None
    children_raw: str | None = None  # the text between the braces, for paging URLs


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, expected: str):
        found = repr(self.text[self.pos]) if self.pos < len(self.text) else "end of string"
        raise bad_param(
            f'Syntax error "Expected {expected} instead of {found}." at character {self.pos}: {self.text}'
        )

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_spaces()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            self.fail(repr(char))
        self.pos += 1

    def name(self) -> str:
        self.skip_spaces()
        match = _NAME.match(self.text, self.pos)
        if not match:
            self.fail("a field name")
        self.pos = match.end()
        return match.group()

    def spec_list(self, closing: str) -> list[FieldSpec]:
        specs = [self.spec()]
        while self.peek() == ",":
            self.pos += 1
            if self.peek() in (closing, ""):  # tolerate a trailing comma
                break
            specs.append(self.spec())
        return specs

    def spec(self) -> FieldSpec:
        spec = FieldSpec(self.name())
        while self.peek() == ".":
            self.pos += 1
            modifier = self.name()
            self.expect("(")
            match = _ARG.match(self.text, self.pos)
            self.pos = match.end()
            spec.modifiers[modifier] = match.group().strip()
            self.expect(")")
        if self.peek() == "{":
            self.pos += 1
            start = self.pos
            spec.children = self.spec_list("}")
            spec.children_raw = self.text[start : self.pos].strip()
            self.expect("}")
        return spec


def parse_fields(text: str | None) -> list[FieldSpec] | None:
    """Parse a `fields` value; None or blank means "the default fields"."""
    if text is None or not text.strip():
        return None
    parser = _Parser(text)
    specs = parser.spec_list("")
    if parser.peek() != "":
        parser.fail("end of string")
    return specs
