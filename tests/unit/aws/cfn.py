"""deploy/cloudformation.yaml read as CloudFormation would: intrinsic functions resolved for given parameters.

Enough of CloudFormation's intrinsics for toolrt's template (Ref, GetAtt, Sub, If, Equals, Not, Or,
Split, Join); resources' ARNs come from ``attributes``. Tests compare what the template grants and
configures with what provisioning does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).parents[3] / "deploy" / "cloudformation.yaml"
_TAGS = ("Ref", "GetAtt", "Sub", "If", "Equals", "Not", "Or", "And", "Split", "Join", "Select")


class _Loader(yaml.SafeLoader):
    pass


def _tag(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {"Ref": value} if name == "Ref" else {f"Fn::{name}": value}

    return construct


for _name in _TAGS:
    _Loader.add_constructor(f"!{_name}", _tag(_name))


def load_template() -> dict[str, Any]:
    """The template with intrinsics as ``{"Ref": ...}`` / ``{"Fn::...": ...}`` nodes."""
    return dict(yaml.load(TEMPLATE.read_text(), Loader=_Loader))  # noqa: S506 - our loader adds tags only


class Resolver:
    """Resolves intrinsics for ``parameters`` (defaults filled in), pseudo parameters and resource ``attributes``."""

    def __init__(
        self,
        template: dict[str, Any],
        parameters: dict[str, str],
        attributes: dict[str, str],
        *,
        region: str = "us-east-1",
        account: str = "123456789012",
    ) -> None:
        self.template = template
        self.values: dict[str, Any] = {
            name: spec.get("Default", "") for name, spec in (template.get("Parameters") or {}).items()
        }
        self.values.update(parameters)
        self.values.update({"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws"})
        self.attributes = attributes
        self.conditions = {name: self.resolve(c) for name, c in (template.get("Conditions") or {}).items()}

    def resolve(self, node: Any) -> Any:
        """``node`` with every intrinsic evaluated (``AWS::NoValue`` keys dropped)."""
        if isinstance(node, list):
            return [v for v in (self.resolve(n) for n in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                if value == "AWS::NoValue":
                    return _NO_VALUE
                return self.values[value] if value in self.values else self.attributes[value]
            if key == "Condition":
                return self.conditions[value]
            if key.startswith("Fn::"):
                return self._function(key[4:], value)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _function(self, name: str, value: Any) -> Any:
        if name == "GetAtt":
            return self.attributes[".".join(value)]
        if name == "Sub":
            text = value if isinstance(value, str) else value[0]

            def field(match: re.Match[str]) -> str:
                ref = match.group(1)
                if ref in self.values:
                    return str(self.values[ref])
                return str(self.attributes.get(ref) or self.attributes[ref.split(".")[0]])

            return re.sub(r"\$\{([^}]+)\}", field, text)
        if name == "If":
            condition, yes, no = value
            return self.resolve(yes if self.conditions[condition] else no)
        if name == "Equals":
            left, right = (self.resolve(v) for v in value)
            return left == right
        if name == "Not":
            return not self.resolve(value[0])
        if name == "Or":
            return any(self.resolve(v) for v in value)
        if name == "And":
            return all(self.resolve(v) for v in value)
        if name == "Split":
            separator, text = value[0], self.resolve(value[1])
            return str(text).split(separator)
        if name == "Join":
            separator, items = value[0], self.resolve(value[1])
            return separator.join(str(i) for i in items)
        raise NotImplementedError(name)


class _NoValue:
    pass


_NO_VALUE = _NoValue()

__all__ = ["Resolver", "load_template"]
