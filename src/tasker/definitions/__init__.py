"""Task templates: parsed from YAML or declared in Python, validated, and registered."""

from __future__ import annotations

from tasker.definitions.builder import Template
from tasker.definitions.loader import load_template_file, load_templates
from tasker.definitions.parse import parse_template
from tasker.definitions.registry import HandlerCoverage, TemplateRegistry
from tasker.definitions.template import StepSpec, TemplateDefinition, validate_template

__all__ = [
    "HandlerCoverage",
    "StepSpec",
    "Template",
    "TemplateDefinition",
    "TemplateRegistry",
    "load_template_file",
    "load_templates",
    "parse_template",
    "validate_template",
]
