"""The deployment bundle (issue 14 item 7): what the Lambda runtime provides and data the code never reads stay out.

phonenumberslite is not used: it lacks phonenumbers/tzdata, and SMS quiet hours need phonenumbers.timezone. The full
package stays, without its geocoder and carrier data; these tests show nothing needs them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from infra.package import LAMBDA_UNZIPPED_LIMIT, RUNTIME_PROVIDED, UNUSED_DATA, slim_bundle

ROOT = Path(__file__).resolve().parents[2]


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_the_runtimes_sdk_and_unused_phone_data_are_left_out(tmp_path: Path) -> None:
    kept = {
        "app.py": b"app",
        "chalicelib/config.py": b"settings",
        "jmespath/__init__.py": b"powertools needs it",
        "botocore_stubs_like/__init__.py": b"a name that only starts like botocore",
        "phonenumbers/__init__.py": b"core",
        "phonenumbers/timezone.py": b"quiet hours",
        "phonenumbers/tzdata/__init__.py": b"time zones" * 10,
        "phonenumbers/data/region_US.py": b"metadata",
        "aws_xray_sdk/__init__.py": b"tracer",
    }
    left_out = {
        "boto3/__init__.py": b"x" * 100,
        "boto3-1.44.5.dist-info/METADATA": b"m",
        "botocore/data/endpoints.json": b"y" * 1000,
        "botocore-1.44.5.dist-info/RECORD": b"r",
        "s3transfer/manager.py": b"z",
        "phonenumbers/geodata/data0.py": b"g" * 500,
        "phonenumbers/carrierdata/data0.py": b"c" * 300,
    }
    size = slim_bundle(_zip(tmp_path / "in.zip", {**kept, **left_out}), tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as slim:
        assert {n for n in slim.namelist() if "__pycache__" not in n} == set(kept)
        assert all(slim.read(name) == data for name, data in kept.items())
        compiled = sum(slim.getinfo(n).file_size for n in slim.namelist() if "__pycache__" in n)
    assert size.unzipped == sum(len(data) for data in kept.values()) + compiled
    assert size.left_out == sum(len(data) for data in left_out.values())
    assert size.zipped == (tmp_path / "out.zip").stat().st_size
    assert "250 MiB" in size.describe()


def test_every_module_ships_compiled_so_a_cold_start_compiles_nothing(tmp_path: Path) -> None:
    """Lambda's /var/task is read-only: a module without its pyc in the bundle is compiled at every cold start."""
    entries = {
        "pkg/__init__.py": b"VALUE = 42\n",
        "pkg/template.py": b"{% if lender %}{{ lender }}{% endif %}",  # a file named .py that is not a module
        "pkg/__pycache__/__init__.cpython-311.opt-1.pyc": b"another optimisation level, kept as it is",
    }
    slim_bundle(_zip(tmp_path / "in.zip", entries), tmp_path / "out.zip")
    bundle = tmp_path / "bundle"
    with zipfile.ZipFile(tmp_path / "out.zip") as slim:
        names = set(slim.namelist())
        slim.extractall(bundle)
    pyc = f"pkg/__pycache__/__init__.{sys.implementation.cache_tag}.pyc"
    assert names == {*entries, pyc}
    header = (bundle / pyc).read_bytes()[:8]
    assert header == importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little")  # hash-based, unchecked

    env = {**os.environ, "PYTHONPATH": str(bundle), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-v", "-c", "import pkg; print(pkg.VALUE)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "42"
    assert f"code object from '{bundle / pyc}'" in result.stderr  # read from the bundle, not compiled


def test_a_bundle_over_lambdas_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import infra.package

    monkeypatch.setattr(infra.package, "LAMBDA_UNZIPPED_LIMIT", 10)
    with pytest.raises(ValueError, match="over Lambda's limit"):
        slim_bundle(_zip(tmp_path / "in.zip", {"app.py": b"x" * 11}), tmp_path / "out.zip")
    assert LAMBDA_UNZIPPED_LIMIT == 250 * 1024 * 1024


def test_no_code_reads_the_phone_data_left_out() -> None:
    pattern = re.compile(r"\b(geocoder|carrier|description_for_number|name_for_number|geodata|carrierdata)\b")
    users = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "chalicelib").rglob("*.py")
        if "phonenumbers" in (text := path.read_text()) and pattern.search(text)
    ]
    assert users == []


def _package_files(package: ModuleType) -> dict[str, bytes]:
    """An installed package's files as a bundle holds them (``<package>/<path>``), without bytecode caches."""
    installed = Path(str(package.__file__)).parent
    return {
        f"{installed.name}/{path.relative_to(installed).as_posix()}": path.read_bytes()
        for path in installed.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def _slim_and_extract(tmp_path: Path, entries: dict[str, bytes]) -> Path:
    """``entries`` zipped as Chalice would, slimmed as ``make package`` does, and extracted: the bundle's root."""
    with zipfile.ZipFile(tmp_path / "in.zip", "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    slim_bundle(tmp_path / "in.zip", tmp_path / "out.zip")
    bundle = tmp_path / "bundle"
    with zipfile.ZipFile(tmp_path / "out.zip") as slim:
        slim.extractall(bundle)
    return bundle


def test_quiet_hours_find_time_zones_in_the_slim_phonenumbers(tmp_path: Path) -> None:
    import phonenumbers

    entries = _package_files(phonenumbers)
    assert any(name.startswith(UNUSED_DATA) for name in entries)  # the installed package has the data
    bundle = _slim_and_extract(tmp_path, entries)
    assert not (bundle / "phonenumbers" / "geodata").exists()

    code = (
        "import phonenumbers; from chalicelib.domain import sms; "
        "print(phonenumbers.__file__); print(','.join(sms.time_zones('+14155550123'))); "
        "print(sms.phone_kind('+447911123456'))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(bundle), str(ROOT)]), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    where, zones, kind = result.stdout.split()
    assert where.startswith(str(bundle))  # the slim copy, not the virtual environment's
    assert zones == "America/Los_Angeles"
    assert kind == "mobile"


def test_the_runtime_requirements_carry_the_time_zone_database() -> None:
    """Lambda's python3.11 image may have no /usr/share/zoneinfo: zoneinfo then reads the tzdata package, which
    ``chalice package`` installs into the bundle from requirements.txt."""
    listed = [line.split("==")[0] for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert "tzdata" in listed
    assert not any(prefix.startswith("tzdata") for prefix in (*UNUSED_DATA, *RUNTIME_PROVIDED))


def test_quiet_hours_find_time_zones_in_the_bundle_without_system_time_zones(tmp_path: Path) -> None:
    """The slim bundle's own tzdata, with no system time zone database at all (PYTHONTZPATH empty, as on a Lambda
    image without /usr/share/zoneinfo): 23:00 in San Francisco is quiet. Without tz data the zone would be skipped
    and the SMS sent in the night."""
    import phonenumbers
    import tzdata

    bundle = _slim_and_extract(tmp_path, {**_package_files(phonenumbers), **_package_files(tzdata)})
    assert (bundle / "tzdata" / "zoneinfo" / "America" / "Los_Angeles").is_file()

    code = (
        "import zoneinfo, tzdata; from datetime import datetime, UTC; from chalicelib.domain import sms; "
        "print(zoneinfo.TZPATH == ()); print(tzdata.__file__); "
        "print(sms.quiet_until('+14155550123', datetime(2026, 7, 1, 6, 0, tzinfo=UTC)).isoformat())"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(bundle), str(ROOT)]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONTZPATH": "",  # no system time zone database
    }
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    no_system_zones, where, until = result.stdout.split()
    assert no_system_zones == "True"
    assert where.startswith(str(bundle))  # the bundle's tzdata, not the virtual environment's
    assert until == "2026-07-01T08:00:00-07:00"  # 08:00 in San Francisco (PDT)
