"""``gateway verify FILE [SIGNATURE]``: the verified line and exit 0, the reason and exit 1,
exit 2 for what is a usage or configuration problem; the CA from the configuration unless
``--ca`` names one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config.load import load_config
from gateway.security.keys import load_signer
from gateway.security.pki import create_ca, issue_signing_certificate
from gateway.security.signing import Signature, Signer, SigningKey
from tests.support.harness import write_files

CONTENT = b"UNB+UNOC:3+SWGATEWAY+DEMOVAN+261203:1326+42'UNZ+0+42'"
Captured = pytest.CaptureFixture[str]


def signed(folder: Path, signer: Signer, content: bytes = CONTENT) -> tuple[Path, Signature]:
    answer = folder / "answer.edi"
    answer.write_bytes(content)
    signature = signer.sign(content)
    Path(f"{answer}.p7s").write_bytes(signature.der)
    return answer, signature


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path, Signer]:
    """A CA file and a signer it vouches for."""
    ca = create_ca("test CA")
    issued = issue_signing_certificate(ca, "test gateway")
    (tmp_path / "ca.crt").write_bytes(ca.certificate_pem)
    return tmp_path, tmp_path / "ca.crt", Signer([SigningKey(issued.certificate,
                                                             issued.private_key)])


def test_a_good_signature_prints_who_signed_when(demo: tuple[Path, Path, Signer],
                                                 capsys: Captured) -> None:
    folder, ca, signer = demo
    answer, signature = signed(folder, signer)

    assert main(["--config", "/nonexistent.yaml", "verify", str(answer), "--ca", str(ca)]) == 0
    assert capsys.readouterr().out == (
        f"verified: {answer} signed by CN=test gateway,O=Single Window Gateway at "
        f"{signature.signed_at:%Y-%m-%dT%H:%M:%SZ} (certificate sha256 "
        f"{signature.certificate_fingerprint})\n")


def test_the_signature_may_be_named(demo: tuple[Path, Path, Signer], capsys: Captured) -> None:
    folder, ca, signer = demo
    answer, _ = signed(folder, signer)
    elsewhere = folder / "elsewhere.der"
    Path(f"{answer}.p7s").rename(elsewhere)

    assert main(["verify", str(answer), str(elsewhere), "--ca", str(ca)]) == 0
    assert capsys.readouterr().out.startswith(f"verified: {answer} signed by CN=test gateway")


def test_a_changed_byte_exits_1_saying_why(demo: tuple[Path, Path, Signer],
                                          capsys: Captured) -> None:
    folder, ca, signer = demo
    answer, _ = signed(folder, signer)
    answer.write_bytes(CONTENT.replace(b"42", b"43", 1))

    assert main(["verify", str(answer), "--ca", str(ca)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"gateway: {answer}: the signature {answer}.p7s does not "
                                   "verify: the content's sha256 digest is not the signed")


def test_a_signature_another_ca_vouches_for_exits_1(demo: tuple[Path, Path, Signer],
                                                    capsys: Captured) -> None:
    folder, _, signer = demo
    answer, _ = signed(folder, signer)
    (folder / "other.crt").write_bytes(create_ca("test CA").certificate_pem)

    assert main(["verify", str(answer), "--ca", str(folder / "other.crt")]) == 1
    assert "no chain to a trust anchor" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["file", "signature", "ca"])
def test_what_cannot_be_read_exits_2(demo: tuple[Path, Path, Signer], capsys: Captured,
                                     missing: str) -> None:
    folder, ca, signer = demo
    answer, _ = signed(folder, signer)
    {"file": answer, "signature": Path(f"{answer}.p7s"), "ca": ca}[missing].unlink()

    assert main(["verify", str(answer), "--ca", str(ca)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_a_fifo_is_refused_not_waited_on(demo: tuple[Path, Path, Signer],
                                         capsys: Captured) -> None:
    folder, ca, _ = demo
    fifo = folder / "answer.edi"
    os.mkfifo(fifo)

    assert main(["verify", str(fifo), "--ca", str(ca)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_a_ca_file_that_is_no_pem_exits_2(demo: tuple[Path, Path, Signer],
                                          capsys: Captured) -> None:
    folder, ca, signer = demo
    answer, _ = signed(folder, signer)
    ca.write_bytes(b"not a certificate\n")

    assert main(["verify", str(answer), "--ca", str(ca)]) == 2
    assert "not PEM certificates" in capsys.readouterr().err


def test_without_ca_the_configured_signing_ca_is_trusted(tmp_path: Path,
                                                         capsys: Captured) -> None:
    files = write_files(tmp_path, "gw_unused")
    answer, signature = signed(tmp_path, load_signer(load_config(files.config_path, {})))

    assert main(["--config", str(files.config_path), "verify", str(answer)]) == 0
    assert signature.certificate_fingerprint in capsys.readouterr().out
    (tmp_path / "pki" / "ca.crt").write_bytes(create_ca("test CA").certificate_pem)
    assert main(["--config", str(files.config_path), "verify", str(answer)]) == 1


def test_without_ca_a_broken_configuration_exits_2(demo: tuple[Path, Path, Signer],
                                                   capsys: Captured) -> None:
    folder, _, signer = demo
    answer, _ = signed(folder, signer)

    assert main(["--config", str(folder / "missing.yaml"), "verify", str(answer)]) == 2
    assert "missing.yaml" in capsys.readouterr().err
