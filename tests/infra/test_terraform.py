"""Static checks of the Terraform under ``infra/``, without a Terraform binary.

Every ``.tf`` file is parsed with python-hcl2, then, per module (a folder of ``.tf`` files):

- every ``var.X`` is declared, and every declared variable is used (outside its own block);
- every ``local.X`` is defined, and every local is used;
- every ``<type>.<name>`` resource reference and ``data.<type>.<name>`` names a block of the module;
- ``each.*`` / ``count.*`` appear only in blocks with ``for_each`` / ``count``;
- every ``module.M.Y`` names a module call whose (local) source has output ``Y``; every argument of a
  module call is a variable of that module, and every required variable of it is passed;
- variables have a type and a description, outputs a description and a value;
- ``versions.tf`` pins Terraform and every provider the resources use (lower and upper bounds);
- every ``#checkov:skip`` carries its reason; each module's README names its inputs and outputs.

The checker is plain functions over parsed HCL (:func:`load_module`, :func:`problems`), tested
below on small modules written to ``tmp_path`` so each rule is seen to fail.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MODULES = ("aws", "azure", "gcp")
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
META_ARGUMENTS = frozenset({"source", "version", "providers", "count", "for_each", "depends_on"})

_IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"
_NOT_AFTER = r"(?<![\w.$-])"
_VAR = re.compile(_NOT_AFTER + r"var\.(" + _IDENT + ")")
_LOCAL = re.compile(_NOT_AFTER + r"local\.(" + _IDENT + ")")
_MODULE = re.compile(_NOT_AFTER + r"module\.(" + _IDENT + r")(?:\s*\[[^\]]*\])?(?:\.(" + _IDENT + "))?")
_DATA = re.compile(_NOT_AFTER + r"data\.(" + _IDENT + r")\.(" + _IDENT + ")")
_EACH = re.compile(_NOT_AFTER + r"each\.(key|value)\b")
_COUNT = re.compile(_NOT_AFTER + r"count\.index\b")
_FOR = re.compile(r"\bfor\s+(" + _IDENT + r")(?:\s*,\s*(" + _IDENT + r"))?\s+in\b")
_SKIP = re.compile(r"#\s*checkov:skip=([A-Za-z0-9_]+)(?::(.*))?$")


# ------------------------------------------------------------------------------------------------
# Expressions: python-hcl2 renders expressions as "${...}" and string templates with their quotes.
# References are looked for in code only: string literal text is dropped, interpolations kept.
# ------------------------------------------------------------------------------------------------


def _match_brace(s: str, i: int) -> int:
    """Index of the ``}`` closing a ``${`` / ``%{`` / ``{`` opened just before ``i``."""
    depth = 1
    while i < len(s):
        c = s[i]
        if c == '"':
            i, _ = _scan_string(s, i + 1)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(s)


def _scan_string(s: str, i: int, *, until_quote: bool = True) -> tuple[int, list[str]]:
    """Scan a string literal body from ``i``; return the index after it and its interpolations."""
    interpolations: list[str] = []
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if until_quote and c == '"':
            return i + 1, interpolations
        if s.startswith("$${", i) or s.startswith("%%{", i):
            i += 3
            continue
        if s.startswith("${", i) or s.startswith("%{", i):
            end = _match_brace(s, i + 2)
            interpolations.append(s[i + 2 : end])
            i = end + 1
            continue
        i += 1
    return i, interpolations


def code_of(expression: str) -> list[str]:
    """The code parts of HCL expression text: outside string literals, and inside their interpolations."""
    parts: list[str] = []
    out: list[str] = []
    i = 0
    while i < len(expression):
        c = expression[i]
        if c == '"':
            i, interpolations = _scan_string(expression, i + 1)
            out.append('""')
            for inner in interpolations:
                parts.extend(code_of(inner))
            continue
        out.append(c)
        i += 1
    parts.append("".join(out))
    return parts


def value_code(value: str) -> list[str]:
    """Code parts of one value as python-hcl2 renders it (``"${expr}"``, ``"\\"template\\""``, heredoc)."""
    if value.startswith("${") and value.endswith("}") and _match_brace(value, 2) == len(value) - 1:
        return code_of(value[2:-1])
    if value.startswith('"<<'):  # heredoc template: quotes inside are text
        _, interpolations = _scan_string(value, 1, until_quote=False)
        return [part for inner in interpolations for part in code_of(inner)]
    if value.startswith('"'):
        _, interpolations = _scan_string(value, 1)
        return [part for inner in interpolations for part in code_of(inner)]
    return [value] if re.match(r"^" + _IDENT + r"(\.|\[)", value) else []


def walk_code(node: Any) -> list[str]:
    """Every code part in a parsed HCL body (attribute names and comments excluded)."""
    found: list[str] = []
    if isinstance(node, str):
        found.extend(value_code(node))
    elif isinstance(node, list):
        for item in node:
            found.extend(walk_code(item))
    elif isinstance(node, dict):
        for key, item in node.items():
            if key in ("__comments__", "__inline_comments__", "__is_block__"):
                continue
            if key == "lifecycle":  # ignore_changes lists attribute names, not references
                found.extend(walk_code([{k: v for k, v in b.items() if k != "ignore_changes"} for b in item]))
                continue
            found.extend(walk_code(item))
    return found


def unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def literal(value: Any) -> Any:
    """A literal string value without its quotes; anything else as is."""
    return unquote(value) if isinstance(value, str) else value


# ------------------------------------------------------------------------------------------------
# Modules
# ------------------------------------------------------------------------------------------------


@dataclass
class Block:
    kind: str  # variable, output, locals, resource, data, module, provider, terraform
    labels: tuple[str, ...]
    body: dict[str, Any]
    file: str

    @property
    def where(self) -> str:
        return f"{self.file}: {self.kind} {'.'.join(self.labels)}".rstrip()


@dataclass
class Module:
    path: Path
    blocks: list[Block] = field(default_factory=list)
    parse_errors: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[Block]:
        return [b for b in self.blocks if b.kind == kind]

    @property
    def variables(self) -> dict[str, Block]:
        return {b.labels[0]: b for b in self.of("variable")}

    @property
    def outputs(self) -> dict[str, Block]:
        return {b.labels[0]: b for b in self.of("output")}

    @property
    def locals(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for b in self.of("locals"):
            out.update({k: v for k, v in b.body.items() if not k.startswith("__")})
        return out

    @property
    def resources(self) -> set[tuple[str, str]]:
        return {(b.labels[0], b.labels[1]) for b in self.of("resource")}

    @property
    def data_sources(self) -> set[tuple[str, str]]:
        return {(b.labels[0], b.labels[1]) for b in self.of("data")}

    @property
    def module_calls(self) -> dict[str, Block]:
        return {b.labels[0]: b for b in self.of("module")}

    @property
    def required_providers(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for b in self.of("terraform"):
            for group in b.body.get("required_providers", []):
                for name, spec in group.items():
                    if not name.startswith("__") and isinstance(spec, dict):
                        out[name] = {k: literal(v) for k, v in spec.items()}
        return out


def _blocks_of(kind: str, entries: Any, file: str) -> list[Block]:
    """Flatten python-hcl2's ``{kind: [{label: {label: body}}]}`` into blocks."""
    depth = {"resource": 2, "data": 2, "variable": 1, "output": 1, "module": 1, "provider": 1}.get(kind, 0)
    blocks: list[Block] = []
    for entry in entries if isinstance(entries, list) else [entries]:
        stack: list[tuple[tuple[str, ...], Any]] = [((), entry)]
        while stack:
            labels, node = stack.pop()
            if len(labels) == depth:
                blocks.append(Block(kind, labels, node, file))
                continue
            for key, child in node.items():
                if not key.startswith("__"):
                    stack.append(((*labels, unquote(key)), child))
    return blocks


def load_module(path: Path) -> Module:
    """Parse every ``.tf`` file of one folder (not its subfolders); cached until a file changes."""
    stamp = tuple((tf.name, tf.stat().st_mtime_ns, tf.stat().st_size) for tf in sorted(path.glob("*.tf")))
    return _load_module(path.resolve(), stamp)


@functools.lru_cache(maxsize=64)
def _load_module(path: Path, stamp: tuple[tuple[str, int, int], ...]) -> Module:
    module = Module(path)
    for tf in sorted(path.glob("*.tf")):
        try:
            with tf.open(encoding="utf-8") as handle:
                parsed = hcl2.load(handle)
        except Exception as exc:
            module.parse_errors.append(f"{tf.name}: {type(exc).__name__}: {str(exc)[:300]}")
            continue
        for kind, entries in parsed.items():
            module.blocks.extend(_blocks_of(kind, entries, tf.name))
    return module


def _provider_of(resource_type: str, providers: set[str]) -> str | None:
    candidates = [p for p in providers if resource_type == p or resource_type.startswith(p + "_")]
    return max(candidates, key=len) if candidates else None


def _resource_ref(providers: set[str]) -> re.Pattern[str]:
    names = sorted(providers | {"terraform"}, key=len, reverse=True)
    alternatives = "|".join(re.escape(n) for n in names)
    return re.compile(_NOT_AFTER + r"((?:" + alternatives + r")_[a-z0-9_]+)\.(" + _IDENT + ")")


def _module_source(module: Module, call: Block) -> Path | None:
    source = literal(call.body.get("source"))
    if isinstance(source, str) and source.startswith(("./", "../")):
        return (module.path / source).resolve()
    return None


def _iterators(code: str) -> set[str]:
    names: set[str] = set()
    for m in _FOR.finditer(code):
        names.update(n for n in m.groups() if n)
    return names


def _dynamic_labels(node: Any) -> set[str]:
    labels: set[str] = set()
    if isinstance(node, dict):
        for key, child in node.items():
            if key == "dynamic":
                for entry in child:
                    for label, body in entry.items():
                        if label.startswith("__"):
                            continue
                        labels.add(unquote(label))
                        iterator = body.get("iterator") if isinstance(body, dict) else None
                        if isinstance(iterator, str):
                            labels.add(unquote(iterator.removeprefix("${").removesuffix("}")))
            labels |= _dynamic_labels(child)
    elif isinstance(node, list):
        for item in node:
            labels |= _dynamic_labels(item)
    return labels


def _bounded(constraint: Any) -> bool:
    return isinstance(constraint, str) and ("<" in constraint or "~>" in constraint) and any(
        c in constraint for c in (">", "~>", "=")
    )


def problems(module: Module, *, modules_root: Path | None = None) -> list[str]:
    """Everything wrong with one module's references, inputs and declarations (empty when sound)."""
    out = list(module.parse_errors)
    providers = set(module.required_providers)
    resource_ref = _resource_ref(providers)
    variables, outputs, local_defs = module.variables, module.outputs, module.locals
    resources, data_sources, calls = module.resources, module.data_sources, module.module_calls
    used_vars: set[str] = set()
    used_locals: set[str] = set()

    for block in module.blocks:
        codes = walk_code(block.body)
        skip = _dynamic_labels(block.body)
        for code in codes:
            skip |= _iterators(code)
        own_var = block.labels[0] if block.kind == "variable" else None
        for code in codes:
            for name in _VAR.findall(code):
                if name != own_var:
                    used_vars.add(name)
                if name not in variables:
                    out.append(f"{block.where}: var.{name} is not declared")
            for name in _LOCAL.findall(code):
                used_locals.add(name)
                if name not in local_defs:
                    out.append(f"{block.where}: local.{name} is not defined")
            for rtype, rname in resource_ref.findall(code):
                if rtype in skip:
                    continue
                if (rtype, rname) not in resources:
                    out.append(f"{block.where}: {rtype}.{rname} is not a resource of this module")
            for dtype, dname in _DATA.findall(code):
                if (dtype, dname) not in data_sources:
                    out.append(f"{block.where}: data.{dtype}.{dname} is not a data source of this module")
            for name, attribute in _MODULE.findall(code):
                if name not in calls:
                    out.append(f"{block.where}: module.{name} is not called here")
                    continue
                source = _module_source(module, calls[name])
                if attribute and source is not None and attribute not in load_module(source).outputs:
                    out.append(f"{block.where}: module.{name}.{attribute} is not an output of {source.name}")
            if block.kind in ("resource", "data", "module"):
                if _EACH.search(code) and "for_each" not in block.body:
                    out.append(f"{block.where}: uses each.* without for_each")
                if _COUNT.search(code) and "count" not in block.body:
                    out.append(f"{block.where}: uses count.index without count")

    for name, block in variables.items():
        if name not in used_vars:
            out.append(f"{block.where}: variable is never used")
        if not literal(block.body.get("description")):
            out.append(f"{block.where}: variable has no description")
        if "type" not in block.body:
            out.append(f"{block.where}: variable has no type")
    for block in outputs.values():
        if not literal(block.body.get("description")):
            out.append(f"{block.where}: output has no description")
        if "value" not in block.body:
            out.append(f"{block.where}: output has no value")
    for name in local_defs:
        if name not in used_locals:
            out.append(f"locals: local.{name} is never used")

    for call in calls.values():
        source = _module_source(module, call)
        if source is None:
            continue
        if not source.is_dir():
            out.append(f"{call.where}: source {literal(call.body.get('source'))} does not exist")
            continue
        child = load_module(source).variables
        passed = {k for k in call.body if not k.startswith("__") and k not in META_ARGUMENTS}
        for arg in sorted(passed - set(child)):
            out.append(f"{call.where}: {arg} is not a variable of {source.name}")
        for var_name, var_block in child.items():
            if "default" not in var_block.body and var_name not in passed:
                out.append(f"{call.where}: required variable {var_name} of {source.name} is not passed")

    if not module.of("terraform"):
        out.append(f"{module.path.name}: no terraform block (versions.tf)")
    for block in module.of("terraform"):
        if not _bounded(literal(block.body.get("required_version"))):
            out.append(f"{block.where}: required_version must have lower and upper bounds")
    for name, spec in module.required_providers.items():
        if not spec.get("source"):
            out.append(f"versions.tf: provider {name} has no source")
        if not _bounded(spec.get("version")):
            out.append(f"versions.tf: provider {name} version {spec.get('version')!r} must have lower and upper bounds")
    for kind in ("resource", "data"):
        for block in module.of(kind):
            if _provider_of(block.labels[0], providers) is None and not block.labels[0].startswith("terraform_"):
                out.append(f"{block.where}: provider of {block.labels[0]} is not in required_providers")
    return out


def skip_problems(path: Path) -> list[str]:
    """``#checkov:skip`` comments without a check id or a real reason."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = _SKIP.search(line.strip())
        if m and (not m.group(2) or len(m.group(2).strip()) < 20):
            out.append(f"{path.name}:{number}: checkov skip of {m.group(1)} has no reason")
    return out


def module_dirs() -> list[Path]:
    return sorted({tf.parent for tf in INFRA.rglob("*.tf")})


# ------------------------------------------------------------------------------------------------
# The repository's Terraform
# ------------------------------------------------------------------------------------------------


def test_every_module_and_example_is_present() -> None:
    # GIVEN the layout the issue asks for
    dirs = {p.relative_to(INFRA).as_posix() for p in module_dirs()}
    # THEN the three modules and their examples exist, each with the five files
    assert dirs == {*MODULES, *(f"examples/{m}" for m in MODULES)}
    for d in dirs:
        missing = [f for f in MODULE_FILES if not (INFRA / d / f).is_file()]
        assert not missing, f"infra/{d} lacks {missing}"


@pytest.mark.parametrize("folder", [p.relative_to(INFRA).as_posix() for p in module_dirs()])
def test_module_references_are_sound(folder: str) -> None:
    module = load_module(INFRA / folder)
    assert module.blocks, f"infra/{folder} parsed to nothing"
    assert problems(module) == []


@pytest.mark.parametrize("folder", [p.relative_to(INFRA).as_posix() for p in module_dirs()])
def test_checkov_skips_carry_reasons(folder: str) -> None:
    assert [p for tf in sorted((INFRA / folder).glob("*.tf")) for p in skip_problems(tf)] == []


@pytest.mark.parametrize("cloud", MODULES)
def test_readme_lists_inputs_and_outputs(cloud: str) -> None:
    module = load_module(INFRA / cloud)
    readme = (INFRA / cloud / "README.md").read_text(encoding="utf-8")
    missing = [n for n in [*module.variables, *module.outputs] if f"`{n}`" not in readme]
    assert missing == [], f"infra/{cloud}/README.md does not list {missing}"


@pytest.mark.parametrize("cloud", MODULES)
def test_examples_call_their_module(cloud: str) -> None:
    example = load_module(INFRA / "examples" / cloud)
    sources = {_module_source(example, call) for call in example.module_calls.values()}
    assert (INFRA / cloud).resolve() in sources


def test_examples_find_the_zips_adscore_package_writes() -> None:
    # GIVEN the file names the packaging modules write
    from adscore.packaging import azure as azure_packaging

    gcp_zip = "adscore-gcp-function.zip"
    try:
        from adscore.packaging import gcp as gcp_packaging

        gcp_zip = gcp_packaging.ZIP_NAME
    except ImportError:  # pragma: no cover - packaging module not there yet
        pass
    aws_source = (ROOT / "src" / "adscore" / "packaging" / "aws.py").read_text(encoding="utf-8")
    assert 'f"adscore-aws-lambda-{arch}.zip"' in aws_source
    # THEN each example's default path ends with that name
    expected = {
        "aws": "dist/adscore-aws-lambda-${var.lambda_architecture}.zip",
        "azure": f"dist/{azure_packaging.ZIP_NAME}",
        "gcp": f"dist/{gcp_zip}",
    }
    for cloud, tail in expected.items():
        text = (INFRA / "examples" / cloud / "main.tf").read_text(encoding="utf-8")
        assert f'/../../../{tail}"' in text, f"examples/{cloud} does not default to {tail}"


def test_aws_architectures_match_packaging() -> None:
    from adscore.packaging.aws import ARCHITECTURES

    variables = load_module(INFRA / "aws").variables
    condition = variables["lambda_architecture"].body["validation"][0]["condition"]
    assert set(re.findall(r'"([a-z0-9_]+)"', condition)) == set(ARCHITECTURES)


def test_state_schemas_match_the_backends() -> None:
    # GIVEN the tables the state backends expect
    from adscore.state.dynamodb import TABLE_SCHEMA

    aws = {b.labels[1]: b.body for b in load_module(INFRA / "aws").of("resource") if b.labels[0] == "aws_dynamodb_table"}
    table = aws["state"]
    keys = {k["KeyType"]: k["AttributeName"] for k in TABLE_SCHEMA["KeySchema"]}
    # THEN the DynamoDB table has the same keys, billing and TTL attribute
    assert literal(table["hash_key"]) == keys["HASH"]
    assert literal(table["range_key"]) == keys["RANGE"]
    assert literal(table["billing_mode"]) == TABLE_SCHEMA["BillingMode"]
    assert literal(table["ttl"][0]["attribute_name"]) == TABLE_SCHEMA["TimeToLiveAttribute"]
    assert {(literal(a["name"]), literal(a["type"])) for a in table["attribute"]} == {
        (a["AttributeName"], a["AttributeType"]) for a in TABLE_SCHEMA["AttributeDefinitions"]
    }
    # AND the Firestore TTL policy is on the field the Firestore backend writes
    from adscore.state.firestore import TTL_FIELD

    gcp = {b.labels[1]: b.body for b in load_module(INFRA / "gcp").of("resource") if b.labels[0] == "google_firestore_field"}
    assert literal(gcp["ttl"]["field"]) == TTL_FIELD


# ------------------------------------------------------------------------------------------------
# The checker itself: each rule fails on a module that breaks it
# ------------------------------------------------------------------------------------------------

_VERSIONS = """
terraform {
  required_version = ">= 1.9.0, < 2.0.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0.0, < 7.0.0"
    }
  }
}
"""


def _write(folder: Path, files: dict[str, str]) -> Module:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return load_module(folder)


def _child(tmp_path: Path) -> Path:
    _write(
        tmp_path / "child",
        {
            "versions.tf": _VERSIONS,
            "variables.tf": 'variable "name" {\n  description = "n"\n  type = string\n}\n'
            'variable "size" {\n  description = "s"\n  type = number\n  default = 1\n}\n',
            "main.tf": 'resource "aws_sqs_queue" "q" {\n  name = "${var.name}-${var.size}"\n}\n',
            "outputs.tf": 'output "arn" {\n  description = "a"\n  value = aws_sqs_queue.q.arn\n}\n',
        },
    )
    return tmp_path / "child"


def test_checker_accepts_a_sound_module(tmp_path: Path) -> None:
    _child(tmp_path)
    parent = _write(
        tmp_path / "parent",
        {
            "versions.tf": _VERSIONS,
            "main.tf": 'module "c" {\n  source = "../child"\n  name = "x"\n}\n'
            'locals {\n  arns = [for q in [module.c.arn] : q]\n}\n'
            'output "arns" {\n  description = "d"\n  value = local.arns\n}\n',
        },
    )
    assert problems(parent) == []


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ('output "o" {\n  description = "d"\n  value = var.missing\n}\n', "var.missing is not declared"),
        ('output "o" {\n  description = "d"\n  value = local.nope\n}\n', "local.nope is not defined"),
        ('output "o" {\n  description = "d"\n  value = aws_sqs_queue.ghost.arn\n}\n', "aws_sqs_queue.ghost is not a resource"),
        ('output "o" {\n  description = "d"\n  value = data.aws_region.here.region\n}\n', "data.aws_region.here is not a data source"),
        ('output "o" {\n  value = 1\n}\n', "output has no description"),
        ('locals {\n  unused = 1\n}\n', "local.unused is never used"),
        ('resource "aws_sqs_queue" "q" {\n  name = each.key\n}\n', "uses each.* without for_each"),
        ('resource "aws_sqs_queue" "q" {\n  name = "q-${count.index}"\n}\n', "uses count.index without count"),
        ('resource "google_pubsub_topic" "t" {\n  name = "t"\n}\n', "provider of google_pubsub_topic is not in required_providers"),
        ('variable "lonely" {\n  description = "d"\n  type = string\n}\n', "variable is never used"),
        ('variable "v" {\n  type = string\n}\noutput "o" {\n  description = "d"\n  value = var.v\n}\n', "variable has no description"),
    ],
)
def test_checker_finds_broken_references(tmp_path: Path, main: str, expected: str) -> None:
    module = _write(tmp_path / "m", {"versions.tf": _VERSIONS, "main.tf": main})
    found = problems(module)
    assert any(expected in p for p in found), found


def test_checker_ignores_text_inside_string_literals(tmp_path: Path) -> None:
    # GIVEN references that only appear inside literal text, and iterator / dynamic names
    module = _write(
        tmp_path / "m",
        {
            "versions.tf": _VERSIONS,
            "main.tf": 'variable "v" {\n  description = "uses var.ghost and aws_sqs_queue.ghost"\n  type = list(string)\n'
            '  validation {\n    condition = alltrue([for aws_x in var.v : can(regex("local.no", aws_x))])\n'
            '    error_message = "data.aws_y.z is fine here"\n  }\n}\n'
            'resource "aws_sqs_queue" "q" {\n  name = "q"\n  dynamic "aws_tag" {\n    for_each = var.v\n'
            '    content {\n      key = aws_tag.value\n    }\n  }\n}\n',
        },
    )
    # THEN nothing is reported
    assert problems(module) == []


def test_checker_checks_module_calls(tmp_path: Path) -> None:
    _child(tmp_path)
    parent = _write(
        tmp_path / "parent",
        {
            "versions.tf": _VERSIONS,
            "main.tf": 'module "c" {\n  source = "../child"\n  colour = "red"\n}\n'
            'output "o" {\n  description = "d"\n  value = module.c.missing\n}\n'
            'output "p" {\n  description = "d"\n  value = module.other.arn\n}\n',
        },
    )
    found = problems(parent)
    assert any("colour is not a variable of child" in p for p in found), found
    assert any("required variable name of child is not passed" in p for p in found), found
    assert any("module.c.missing is not an output of child" in p for p in found), found
    assert any("module.other is not called here" in p for p in found), found


def test_checker_wants_bounded_versions(tmp_path: Path) -> None:
    loose = _VERSIONS.replace('">= 6.0.0, < 7.0.0"', '">= 6.0.0"').replace('">= 1.9.0, < 2.0.0"', '">= 1.9.0"')
    module = _write(tmp_path / "m", {"versions.tf": loose})
    found = problems(module)
    assert any("required_version must have lower and upper bounds" in p for p in found), found
    assert any("provider aws version" in p for p in found), found


def test_checker_reports_unparsable_files(tmp_path: Path) -> None:
    module = _write(tmp_path / "m", {"versions.tf": _VERSIONS, "main.tf": 'resource "aws_sqs_queue" {\n'})
    assert any(p.startswith("main.tf:") for p in problems(module))


def test_skip_without_reason_is_reported(tmp_path: Path) -> None:
    tf = tmp_path / "main.tf"
    tf.write_text(
        'resource "aws_sqs_queue" "q" {\n  #checkov:skip=CKV_AWS_27\n'
        "  #checkov:skip=CKV_AWS_1:because the queue holds nothing secret at all\n}\n",
        encoding="utf-8",
    )
    assert skip_problems(tf) == ["main.tf:2: checkov skip of CKV_AWS_27 has no reason"]


@pytest.mark.parametrize("cloud", MODULES)
def test_modules_work_from_a_tagged_source(cloud: str) -> None:
    # GIVEN a module fetched alone (source = "git::...//infra/<cloud>?ref=v..."): it may read only its own folder
    text = "\n".join(tf.read_text(encoding="utf-8") for tf in sorted((INFRA / cloud).glob("*.tf")))
    assert "../" not in text and "path.root" not in text and "path.cwd" not in text
    # AND the function runtime is a variable, never a hard-coded version
    module = load_module(INFRA / cloud)
    runtime_var = {"aws": "python_runtime", "gcp": "python_runtime", "azure": "python_version"}[cloud]
    assert runtime_var in module.variables
    assert not re.search(r'(runtime|python_version)\s*=\s*"(python)?3?\.?1[0-9]', text)
