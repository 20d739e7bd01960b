"""``tasker templates``: list, show and validate task templates (no database needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text
from rich.tree import Tree

from tasker.cli import common
from tasker.cli.render import dag_tree, table
from tasker.definitions import TemplateDefinition, TemplateRegistry, load_template_file
from tasker.definitions.loader import YAML_SUFFIXES
from tasker.exceptions import TemplateError

app = typer.Typer(name="templates", help="Inspect and check task templates.", no_args_is_help=True)


def _registry(ctx: typer.Context) -> TemplateRegistry:
    paths = common.settings(ctx).templates
    if not paths:
        common.info("no template paths: set TASKER_TEMPLATES or pass --templates")
    return TemplateRegistry.from_paths(paths)


@app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array of template definitions.")
    ] = False,
) -> None:
    """List the templates found in TASKER_TEMPLATES / --templates."""
    templates = _registry(ctx).all()
    if as_json:
        common.print_json([t.to_dict() for t in templates])
        return
    grid = table("namespace", "name", "version", "steps", "description", "source")
    for t in templates:
        grid.add_row(
            t.namespace, t.name, t.version, str(len(t.steps)), t.description or "", t.source or ""
        )
    common.stdout_console().print(grid)


@app.command("show")
def show_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Template name.")],
    namespace: Annotated[str, typer.Option(help="Template namespace.")] = "default",
    version: Annotated[
        str | None, typer.Option(help="Template version (default: the highest).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the canonical definition as JSON.")
    ] = False,
) -> None:
    """Show a template's definition and its DAG, by dependency level."""
    template = _registry(ctx).get(name, namespace, version)
    if as_json:
        common.print_json(template.to_dict())
        return
    console = common.stdout_console()
    console.print(Text(template.key, style="bold"))
    if template.description:
        console.print(template.description)
    if template.source:
        console.print(f"source: {template.source}")
    if template.priority:
        console.print(f"priority: {template.priority}")
    if template.context_schema is not None:
        console.print("context_schema:")
        console.print(json.dumps(template.context_schema, indent=2), markup=False)
    console.print(_tree(template), soft_wrap=False)  # wrap long labels, never crop


def _tree(template: TemplateDefinition) -> Tree:
    def label(step_name: str) -> Text:
        spec = template.step(step_name)
        text = Text(spec.name, style="bold")
        text.append(f"  {spec.handler}", style="cyan")
        timeout = "none" if spec.timeout_seconds is None else f"{spec.timeout_seconds:g}s"
        text.append(
            f"  max_attempts={spec.max_attempts} retryable={str(spec.retryable).lower()}"
            f" timeout={timeout}",
            style="dim",
        )
        if spec.config:
            text.append(f"  config={json.dumps(spec.config)}", style="dim")
        return text

    return dag_tree(
        Text("steps (L = dependency level)"),
        [spec.name for spec in template.steps],
        {spec.name: spec.depends_on for spec in template.steps},
        template.dependency_levels(),
        label,
    )


@app.command("validate")
def validate_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Template files, or directories of *.yaml/*.yml.")
    ],
    no_import: Annotated[
        bool,
        typer.Option(
            "--no-import",
            help="Check the structure only: handler paths must be well formed, but their"
            " modules are not imported.",
        ),
    ] = False,
) -> None:
    """Check template files: one OK line per valid template, the problem for each bad one.

    Exits 2 when any file is invalid. Without --no-import every handler is imported, so run
    it where the handlers' modules are importable (as a worker would).
    """
    registry = TemplateRegistry()  # also catches one key defined twice, differently
    failures = 0
    for path in paths:
        if path.is_dir() and not _files([path]):
            failures += 1
            typer.echo(f"error: {path}: no *.yaml or *.yml files in this directory", err=True)
    for file in _files(paths):
        try:
            for template in load_template_file(file, check_handlers=not no_import):
                registry.add(template, check_handlers=not no_import)
                typer.echo(f"OK {file}: {template.key} ({len(template.steps)} steps)")
        except TemplateError as exc:
            failures += 1
            text = str(exc)
            if str(file) not in text:
                text = f"{file}: {text}"
            typer.echo(f"error: {common.one_line(text)}", err=True)
    if failures:
        common.info(f"{failures} invalid template file(s)")
        raise typer.Exit(common.EXIT_USAGE)


def _files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
            )
        else:
            files.append(path)  # a missing file is reported by the loader
    return files
