"""Graph's `fields` grammar, read the way Meta reads it, so the proxy can see every field asked for.

`name[.modifier(args)]*[{sub-fields}]`, comma separated, nested to any depth; `.as(alias)` renames
a field in the answer; modifier arguments may hold JSON (`.time_range({"since":...})`) and
quoted strings. Anything this parser cannot read is refused: the proxy never forwards a
`fields` value it did not understand (Meta might read more into it than we did).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NoReturn

MAX_DEPTH = 20  # Meta nests a few levels; deeper is refused rather than parsed
MAX_LENGTH = 8192


class FieldSyntaxError(ValueError):
    """A `fields` value that is not Graph's grammar."""


@dataclass
class Field:
    """One requested field: its name, modifiers (`limit`, `as`, ...) and sub-fields."""

    name: str
    modifiers: dict[str, str] = field(default_factory=dict)
    children: list[Field] = field(default_factory=list)

    @property
    def alias(self) -> str | None:
        return self.modifiers.get("as")

    def walk(self) -> Iterator[Field]:
        """This field and every sub-field, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


def _is_name(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def fail(self, what: str) -> NoReturn:
        raise FieldSyntaxError(f"{what} at character {self.pos}")

    def peek(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def name(self) -> str:
        self.peek()
        start = self.pos
        while self.pos < len(self.text) and _is_name(self.text[self.pos]):
            self.pos += 1
        if start == self.pos:
            self.fail("expected a field name")
        return self.text[start:self.pos]

    def arguments(self) -> str:
        """The text between a modifier's parentheses, with nested brackets and quoted strings."""
        start, depth, quote = self.pos, 0, ""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if quote:
                if char == "\\":
                    self.pos += 1
                elif char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char in "([{":
                depth += 1
            elif char in ")]}":
                if depth == 0:
                    if char != ")":
                        self.fail("unbalanced brackets")
                    return self.text[start:self.pos - 1].strip()
                depth -= 1
        self.fail("unclosed modifier")

    def fields(self, depth: int, closing: str) -> list[Field]:
        if depth > MAX_DEPTH:
            self.fail("nested too deeply")
        found = [self.field(depth)]
        while self.peek() == ",":
            self.pos += 1
            if self.peek() in (closing, ""):
                break  # a trailing comma, as Meta tolerates it
            found.append(self.field(depth))
        return found

    def field(self, depth: int) -> Field:
        item = Field(self.name())
        while self.peek() == ".":
            self.pos += 1
            modifier = self.name()
            if self.peek() != "(":
                self.fail("expected '('")
            self.pos += 1
            item.modifiers[modifier] = self.arguments()
        if self.peek() == "{":
            self.pos += 1
            item.children = self.fields(depth + 1, "}")
            if self.peek() != "}":
                self.fail("expected '}'")
            self.pos += 1
        return item


def parse(text: str) -> list[Field]:
    """Every field a `fields` value asks for (empty when blank); FieldSyntaxError otherwise."""
    if len(text) > MAX_LENGTH:
        raise FieldSyntaxError("fields value too long")
    if text.lstrip().startswith("["):  # Meta's SDKs send a JSON list of fields (POST bodies)
        try:
            items = json.loads(text)
        except (ValueError, RecursionError):
            raise FieldSyntaxError("fields: not a JSON list") from None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise FieldSyntaxError("fields: a JSON list holds field strings only")
        text = ",".join(items)
    reader = _Reader(text)
    if reader.peek() == "":
        return []
    found = reader.fields(0, "")
    if reader.peek() != "":
        reader.fail("unexpected text")
    return found


def names(fields: list[Field]) -> set[str]:
    """Every name and alias in a parsed `fields` value, at any depth, lower-cased."""
    out: set[str] = set()
    for top in fields:
        for item in top.walk():
            out.add(item.name.lower())
            if item.alias is not None:
                out.add(item.alias.lower())
    return out
