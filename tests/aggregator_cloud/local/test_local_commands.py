"""`fractal-aggregator enroll` and the refusals of `fractal-aggregator serve`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from aggregator_cloud.cli import main


def test_enroll_writes_certificate_key_and_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    assert main(["enroll", "home-7", "--data-dir", str(data), "--out", str(out)]) == 0
    assert sorted(path.name for path in out.iterdir()) == [
        "ca.pem",
        "home-7.cert.pem",
        "home-7.private.key",
    ]
    certificate = x509.load_pem_x509_certificate((out / "home-7.cert.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key(
        (out / "home-7.private.key").read_bytes(), password=None
    )
    certificate.verify_directly_issued_by(ca)
    assert certificate.public_key() == key.public_key()
    cn = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "home-7"
    assert stat.S_IMODE((out / "home-7.private.key").stat().st_mode) == 0o600
    assert "enrolled home-7" in capsys.readouterr().out


def test_enrolling_twice_uses_the_same_ca(tmp_path: Path) -> None:
    data = tmp_path / "data"
    main(["enroll", "home-1", "--data-dir", str(data), "--out", str(tmp_path / "a")])
    main(["enroll", "home-2", "--data-dir", str(data), "--out", str(tmp_path / "b")])
    assert (tmp_path / "a" / "ca.pem").read_text() == (tmp_path / "b" / "ca.pem").read_text()


def test_enroll_refuses_an_invalid_node_id_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    status = main(["enroll", "home/1", "--data-dir", str(tmp_path / "data"), "--out", str(out)])
    assert status == 2
    assert "invalid node id 'home/1'" in capsys.readouterr().err
    assert not out.exists()


def test_serve_refuses_to_expose_the_unsigned_rest_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    status = main(["serve", "--data-dir", str(data), "--http-host", "0.0.0.0"])
    assert status == 1
    assert "refusing to serve the iot-data REST API on 0.0.0.0" in capsys.readouterr().err
    assert not data.exists()


@pytest.mark.enable_socket  # serve probes for a free loopback port before it fails
def test_serve_explains_a_data_dir_the_broker_cannot_reach(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pytest's tmp_path sits in a 0700 directory: the broker user (we run as root) cannot enter."""
    status = main(["serve", "--data-dir", str(tmp_path / "data"), "--mqtt-port", "0"])
    error = capsys.readouterr().err
    assert status == 1
    assert "mosquitto runs as the user 'mosquitto' and cannot reach" in error
    assert not (tmp_path / "data" / "runtime.json").exists()
