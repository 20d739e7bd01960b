"""Task templates: parsed from YAML or declared in Python, validated, and registered."""

from __future__ import annotations

from tasker.definitions.builder import Template
from tasker.definitions.loader import load_template_file, load_templates
from tasker.definitions.parse import parse_template
from tasker.definitions.registry import HandlerCoverage, TemplateRegistry
from tasker.definitions.template import (
    ChildWorkflow,
    StepSpec,
    TemplateDefinition,
    validate_template,
)
from tasker.definitions.workflows import child_templates

__all__ = [
    "ChildWorkflow",
    "HandlerCoverage",
    "StepSpec",
    "Template",
    "TemplateDefinition",
    "TemplateRegistry",
    "child_templates",
    "load_template_file",
    "load_templates",
    "parse_template",
    "validate_template",
]
