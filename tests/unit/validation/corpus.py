"""Good and bad tool code used by the validation tests: each bad case names the rule and line it must trip."""

from __future__ import annotations

GOOD_PYTHON = {
    "json_math": '''
import json
import math


def handler(values: list[float]) -> dict:
    """Summarise numbers."""
    total = math.fsum(values)
    return json.loads(json.dumps({"total": total, "sqrt": math.sqrt(abs(total))}))
''',
    "datetime_re": """
import re
from datetime import datetime, timedelta, timezone

PATTERN = re.compile(r"(\\d{4})-(\\d{2})-(\\d{2})")


def handler(values: list[float]) -> str:
    match = PATTERN.match("2024-01-02")
    start = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(days=len(values))
    return f"{start.isoformat()} {match.group(1) if match else ''}"
""",
    "dataclasses_typing_collections": """
from __future__ import annotations

import itertools
from collections import Counter, defaultdict, deque
from dataclasses import asdict, dataclass, field
from functools import lru_cache, reduce
from typing import Any, Optional


@dataclass
class Stats:
    count: int = 0
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tags = sorted(self.tags)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.count})"


@lru_cache(maxsize=None)
def square(x: int) -> int:
    return x * x


def handler(values: list[float], label: Optional[str] = None, **extra: Any) -> dict[str, Any]:
    counts = Counter(int(v) for v in values)
    groups: defaultdict[int, list[float]] = defaultdict(list)
    for v in values:
        groups[int(v)].append(v)
    window = deque(values, maxlen=3)
    pairs = list(itertools.combinations(sorted(counts), 2))
    total = reduce(lambda a, b: a + b, values, 0.0)
    return {"stats": asdict(Stats(len(values), [label or "x"])), "pairs": pairs, "total": total,
            "window": list(window), "square": square(len(values)), "name": handler.__name__}
""",
    "statistics_decimal": """
import statistics
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction


def handler(values: list[float]) -> dict:
    mean = statistics.fmean(values) if values else 0.0
    rounded = Decimal(str(mean)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {"mean": str(rounded), "half": str(Fraction(1, 2)), "median": statistics.median(values or [0])}
""",
    "async_function": '''
import asyncio


async def fetch_one(x: float) -> float:
    await asyncio.sleep(0)
    return x * 2


async def handler(values: list[float]) -> list[float]:
    """Double every value concurrently."""
    return list(await asyncio.gather(*(fetch_one(v) for v in values)))
''',
    "shadowed_builtin_names": '''
def handler(values: list[float], input: str = "", format: str = "{}") -> str:
    """Parameters named like builtins are ordinary names, not the builtins."""
    def compile(text: str) -> str:
        return text.upper()
    return format.format(compile(input)) + "{0}, {name}".format(len(values), name="n")
''',
    "getattr_on_safe_module": """
import math


def handler(values: list[float], op: str = "sqrt") -> list[float]:
    fn = getattr(math, op)
    return [fn(v) for v in values if hasattr(math, "pi")]
""",
    "os_path_only": """
import os.path
import string
import textwrap


def handler(values: list[float]) -> str:
    return textwrap.shorten(os.path.join("a", "b") + string.ascii_letters, 20)
""",
    "classes_and_dunders_defined": """
class Vector:
    __slots__ = ("x", "y")

    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y

    def __add__(self, other: "Vector") -> "Vector":
        return Vector(self.x + other.x, self.y + other.y)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vector) and (self.x, self.y) == (other.x, other.y)


class Sub(Vector):
    def __init__(self) -> None:
        super().__init__(0, 0)


def handler(values: list[float]) -> float:
    v = Vector(1, 2) + Vector(3, 4)
    return v.x + sum(values)
""",
    "match_statement": """
def handler(values: list[float]) -> str:
    match values:
        case []:
            return "empty"
        case [x]:
            return f"one {x}"
        case _:
            return "many"
""",
    "class_names": '''
from dataclasses import dataclass


@dataclass
class Point:
    x: float


def handler(values: list[float]) -> list[str]:
    """Name the kinds of the values."""
    return [type(v).__name__ for v in values] + [Point(values[0]).__class__.__name__]
''',
}

# (name, code, rule id, line). Every case uses the default input schema {values: array, required}.
BAD_PYTHON = [
    # A module used as a value: aliasing through containers, arguments, returns and the like.
    (
        "module_in_list",
        "import os\ndef handler(values):\n    o = [os][0]\n    return o.system('id')\n",
        "security.module_as_value",
        3,
    ),
    (
        "module_as_argument",
        "import os\ndef f(m):\n    return m.fork()\ndef handler(values):\n    return f(os)\n",
        "security.module_as_value",
        5,
    ),
    (
        "sys_in_list",
        "import sys\ndef handler(values):\n    return [sys][0].modules['_frozen_importlib']._gcd_import('ctypes')\n",
        "security.module_as_value",
        3,
    ),
    (
        "import_alias_in_tuple",
        "import os as o\ndef handler(values):\n    return (o,)[0].getcwd()\n",
        "security.module_as_value",
        3,
    ),
    (
        "submodule_assigned",
        "import os\ndef handler(values):\n    p = os.path\n    return p.join('a')\n",
        "security.module_as_value",
        3,
    ),
    (
        "from_import_submodule",
        "from os import path\ndef handler(values):\n    return [path][0].exists('/')\n",
        "security.module_as_value",
        3,
    ),
    (
        "reexported_module",
        "import shutil\ndef handler(values):\n    return (shutil.os,)[0].system('id')\n",
        "security.module_as_value",
        3,
    ),
    (
        "walrus_module",
        "import os\ndef handler(values):\n    if (m := os):\n        return m.getpid()\n",
        "security.module_as_value",
        3,
    ),
    (
        "lambda_default_module",
        "import os\nf = lambda m=os: m.getpid()\ndef handler(values):\n    return f()\n",
        "security.module_as_value",
        2,
    ),
    (
        "module_in_dict",
        "import os\ndef handler(values):\n    return {'m': os}['m'].getpid()\n",
        "security.module_as_value",
        3,
    ),
    (
        "module_returned",
        "import os\ndef get():\n    return os\ndef handler(values):\n    return get().getpid()\n",
        "security.module_as_value",
        3,
    ),
    (
        "module_in_with",
        "import os\ndef handler(values):\n    with os as m:\n        return 1\n",
        "security.module_as_value",
        3,
    ),
    (
        "module_starred",
        "import os\ndef handler(values):\n    a, *b = [1, os]\n    return b[0].getpid()\n",
        "security.module_as_value",
        3,
    ),
    (
        "module_in_comprehension",
        "import os\ndef handler(values):\n    return [m.getpid() for m in (os,)]\n",
        "security.module_as_value",
        3,
    ),
    (
        "module_yielded",
        "import os\ndef gen():\n    yield os\ndef handler(values):\n    return next(gen()).getpid()\n",
        "security.module_as_value",
        3,
    ),
    ("module_in_fstring", "import sys\ndef handler(values):\n    return f'{sys}'\n", "security.module_as_value", 3),
    (
        "module_as_default",
        "import os\ndef handler(values, m=os):\n    return m.getpid()\n",
        "security.module_as_value",
        2,
    ),
    (
        "module_decorator_arg",
        "import os\ndef deco(m):\n    return lambda f: f\n@deco(os)\ndef handler(values):\n    return 1\n",
        "security.module_as_value",
        4,
    ),
    (
        "module_in_match",
        "import os\ndef handler(values):\n    match os:\n        case m:\n            return m.getpid()\n",
        "security.module_as_value",
        3,
    ),
    (
        "function_local_import_aliased",
        "def handler(values):\n    import os\n    return [os][0].getpid()\n",
        "security.module_as_value",
        3,
    ),
    (
        "private_module_attribute",
        "import random\ndef handler(values):\n    return random._os.system('id')\n",
        "security.private_attribute",
        3,
    ),
    ("raw_socket", "import _socket\ndef handler(values):\n    return _socket.socket()\n", "security.import._socket", 1),
    (
        "timeit_runs_strings",
        "import timeit\ndef handler(values):\n    return timeit.timeit('1')\n",
        "security.import.timeit",
        1,
    ),
    (
        "loop_subprocess",
        "import asyncio\nasync def handler(values):\n    loop = asyncio.get_running_loop()\n    return await loop.subprocess_shell(None, 'id')\n",
        "security.attribute.subprocess_shell",
        4,
    ),
    ("syntax", "def handler(values):\n    return values +\n", "syntax.python", 2),
    ("return_outside", "return 1\ndef handler(values):\n    pass\n", "syntax.python", 1),
    ("import_subprocess", "import subprocess\ndef handler(values):\n    return 1\n", "security.import.subprocess", 1),
    (
        "from_subprocess",
        "def handler(values):\n    from subprocess import run\n    return run\n",
        "security.import.subprocess",
        2,
    ),
    ("import_socket_as", "import socket as s\ndef handler(values):\n    return 1\n", "security.import.socket", 1),
    (
        "import_urllib_request",
        "import urllib.request\ndef handler(values):\n    return 1\n",
        "security.import.urllib",
        1,
    ),
    ("import_ctypes", "import ctypes\ndef handler(values):\n    return 1\n", "security.import.ctypes", 1),
    (
        "import_importlib",
        "import importlib\ndef handler(values):\n    return importlib.import_module('os')\n",
        "security.import.importlib",
        1,
    ),
    (
        "from_os_system_as",
        "from os import system as s\ndef handler(values):\n    return s('id')\n",
        "security.attribute.os.system",
        1,
    ),
    (
        "os_alias_system",
        "import os as o\ndef handler(values):\n    return o.system('id')\n",
        "security.attribute.os.system",
        3,
    ),
    (
        "os_reassigned",
        "import os\ndef handler(values):\n    x = os\n    return x.popen('id')\n",
        "security.attribute.os.popen",
        4,
    ),
    (
        "getattr_built_string",
        "import os\ndef handler(values):\n    return getattr(os, 'sys' + 'tem')('id')\n",
        "security.attribute.os.system",
        3,
    ),
    (
        "getattr_joined",
        "import os\ndef handler(values):\n    return getattr(os, ''.join(['po', 'pen']))\n",
        "security.attribute.os.popen",
        3,
    ),
    (
        "getattr_dynamic",
        "def handler(values):\n    name = values[0]\n    return getattr(values, name)\n",
        "security.getattr.dynamic",
        3,
    ),
    ("getattr_dunder", "def handler(values):\n    return getattr(values, '__dict__')\n", "security.dunder", 2),
    ("dunder_import", "def handler(values):\n    return __import__('os')\n", "security.builtin.__import__", 2),
    ("eval", "def handler(values):\n    return eval('1+1')\n", "security.builtin.eval", 2),
    ("exec_alias", "def handler(values):\n    run = exec\n    return run('x=1')\n", "security.builtin.exec", 2),
    ("open", "def handler(values):\n    return open('/etc/passwd').read()\n", "security.builtin.open", 2),
    ("compile", "def handler(values):\n    return compile('1', 'x', 'eval')\n", "security.builtin.compile", 2),
    ("globals", "def handler(values):\n    return globals()\n", "security.builtin.globals", 2),
    (
        "deleted_shadow",
        "eval = None\ndel eval\ndef handler(values):\n    return eval('1')\n",
        "security.builtin.eval",
        4,
    ),
    (
        "sys_modules",
        "import sys\ndef handler(values):\n    return sys.modules['os']\n",
        "security.attribute.sys.modules",
        3,
    ),
    (
        "sys_getframe",
        "import sys\ndef handler(values):\n    return sys._getframe(0)\n",
        "security.attribute.sys._getframe",
        3,
    ),
    ("subclasses", "def handler(values):\n    return ().__class__.__base__.__subclasses__()\n", "security.dunder", 2),
    ("globals_attr", "def handler(values):\n    return handler.__globals__\n", "security.dunder", 2),
    ("builtins_name", "def handler(values):\n    return __builtins__\n", "security.dunder", 2),
    (
        "frame_back",
        "def gen():\n    yield 1\ndef handler(values):\n    g = gen()\n    return g.gi_frame.f_back\n",
        "security.attribute.gi_frame",
        5,
    ),
    (
        "tb_frame",
        "def handler(values):\n    try:\n        1 / 0\n    except ZeroDivisionError as e:\n        return e.__traceback__.tb_frame\n",
        "security.attribute.tb_frame",
        5,
    ),
    ("f_back", "def handler(values, frame=None):\n    return frame.f_back.f_globals\n", "security.attribute.f_back", 2),
    (
        "format_string_dunder",
        "def handler(values):\n    return '{0.__class__.__mro__}'.format(values)\n",
        "security.format_string",
        2,
    ),
    (
        "format_map_globals",
        "def handler(values):\n    return '{f.__globals__}'.format_map({'f': handler})\n",
        "security.format_string",
        2,
    ),
    (
        "match_dunder",
        "def handler(values):\n    match values:\n        case list(__dict__=c):\n            return c\n",
        "security.dunder",
        3,
    ),
    ("star_import_os", "from os import *\ndef handler(values):\n    return system('id')\n", "security.import.os", 1),
    (
        "asyncio_subprocess",
        "import asyncio\nasync def handler(values):\n    return await asyncio.create_subprocess_shell('id')\n",
        "security.attribute.asyncio.create_subprocess_shell",
        3,
    ),
    (
        "reexported_os",
        "from os import path\ndef handler(values):\n    return path.os.system('id')\n",
        "security.attribute.os.system",
        3,
    ),
    (
        "formatter_class",
        "import string\ndef handler(values):\n    return string.Formatter().format('{0.__globals__}', handler)\n",
        "security.format_string",
        3,
    ),
    (
        "formatter_get_field",
        "import string\ndef handler(values):\n    return string.Formatter().get_field('0.__class__', [values], {})\n",
        "security.format_string",
        3,
    ),
    ("vars_module", "import math\ndef handler(values):\n    return vars(math)\n", "security.builtin.vars", 3),
    ("entry_missing", "def main(values):\n    return 1\n", "compliance.entrypoint.missing", 0),
    ("entry_not_function", "handler = 42\n", "compliance.entrypoint.not_function", 1),
    ("entry_class", "class handler:\n    pass\n", "compliance.entrypoint.not_function", 1),
    ("param_not_in_schema", "def handler(values, other):\n    return 1\n", "compliance.schema.param_mismatch", 1),
    ("schema_required_not_param", "def handler(other=1):\n    return 1\n", "compliance.schema.param_mismatch", 1),
    ("positional_only", "def handler(values, /):\n    return 1\n", "compliance.schema.param_mismatch", 1),
]
