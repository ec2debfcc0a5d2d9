"""How ``--help`` shows the command line's options: a flag (``--json``, ``--resample/--no-resample``, ``--help``)
takes no value, so its type column is empty; typer's rich help would print ``<bool>`` beside it, as if the flag
wanted ``--json true``; and a command's line in its group's listing is its docstring's first paragraph as one
flowing sentence (the listing kept the docstring's line breaks). :class:`Typer` is ``typer.Typer`` whose
commands and groups render help that way."""

from __future__ import annotations

import inspect

import typer
from typer.core import TyperCommand, TyperGroup


class _FlagsWithoutValue:
    def format_help(self, ctx, formatter) -> None:
        for param in self.get_params(ctx):
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""  # typer's rich help shows an option's metavar, when set, as its type
        super().format_help(ctx, formatter)


class Command(_FlagsWithoutValue, TyperCommand):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.short_help and self.help:  # the group's listing kept the docstring's line breaks mid-sentence
            self.short_help = " ".join(inspect.cleandoc(self.help).split("\n\n")[0].split())


class Group(_FlagsWithoutValue, TyperGroup):
    pass


class Typer(typer.Typer):
    def __init__(self, **kwargs) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(self, *args, cls=Command, **kwargs):
        return super().command(*args, cls=cls, **kwargs)
