"""Side effects without a shell: files (read, write, delete), network and DNS, native code."""

from __future__ import annotations

import pytest

from tests.builders import (HARMLESS_CMD, binint2, build, call, callee, empty_dict, global_, npy_object, pickle, proto,
                            push, reduce, reduce_pickle, short_binbytes, short_binunicode, stop, tuple1, tuple2)
from tests.regressions.corpus import assert_dangerous, case, family, scan_bytes, scan_case

TMP = "/tmp/modelaudit-test-target"

FILES = [("shutil", "rmtree", (TMP,)), ("shutil", "copy", ("/etc/hostname", TMP)), ("builtins", "open", (TMP, "w")),
         ("io", "open", (TMP, "w")), ("_io", "FileIO", ("/etc/hostname", "r")), ("os", "remove", (TMP,)),
         ("tempfile", "mkdtemp", ()), ("logging", "FileHandler", (TMP,)), ("logging.config", "fileConfig", (TMP,)),
         ("pathlib", "Path.write_text", (TMP, "modelaudit-test")), ("linecache", "getline", ("/etc/hostname", 1)),
         ("numpy", "save", (TMP, [1])), ("torch", "save", ({}, TMP)), ("tarfile", "open", (TMP,))]


FILE_CASES = family("files", {f"{m}.{n}": (f"files_{m}_{n}.pkl", reduce_pickle(m, n, *a)) for m, n, a in FILES})


@pytest.mark.parametrize("target", sorted(FILE_CASES))
def test_file_access(tmp_path, target):
    assert_dangerous(scan_bytes(tmp_path, FILE_CASES[target]), target.split(".", 1)[1])


@case("picklescan_logging_FileHandler.pkl")
def picklescan_logging_file_handler() -> bytes:
    return reduce_pickle("logging", "FileHandler", TMP)


@case("picklescan_io_FileIO.pkl")
def picklescan_io_fileio() -> bytes:
    return reduce_pickle("_io", "FileIO", "/etc/hosts", "r")


def test_picklescan_logging_file_handler(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, picklescan_logging_file_handler), "logging.FileHandler")
    assert finding["details"]["family"] == "file-access"


def test_picklescan_io_fileio(tmp_path):
    assert_dangerous(scan_case(tmp_path, picklescan_io_fileio), "io.FileIO")


@case("shutil_rmtree.pkl")
def shutil_rmtree() -> bytes:
    return reduce_pickle("shutil", "rmtree", TMP, protocol=0)


def test_shutil_rmtree(tmp_path):
    assert_dangerous(scan_case(tmp_path, shutil_rmtree), "shutil.rmtree")


NETWORK = [("socket", "create_connection", (("127.0.0.1", 9),)), ("socket", "socket", ()),
           ("http.client", "HTTPSConnection", ("example.invalid",)), ("httplib", "HTTPSConnection", ("example.invalid",)),
           ("requests", "get", ("https://example.invalid",)), ("requests.api", "get", ("https://example.invalid",)),
           ("aiohttp.client", "ClientSession", ()), ("urllib.request", "urlopen", ("https://example.invalid",)),
           ("urllib", "urlopen", ("https://example.invalid",)), ("webbrowser", "open", ("https://example.invalid",)),
           ("ssl", "get_server_certificate", (("modelaudit-test.invalid", 443),)),
           ("socketserver", "TCPServer", (("127.0.0.1", 0), None)), ("xmlrpc.client", "ServerProxy", ("http://x",)),
           ("torch.hub", "load", ("modelaudit/test", "model")), ("huggingface_hub", "hf_hub_download", ("a/b", "c")),
           ("keras.utils", "get_file", ("x", "https://example.invalid"))]


NETWORK_CASES = family("net", {f"{m}.{n}": (f"net_{m}_{n}.pkl", reduce_pickle(m, n, *a, protocol=2))
                               for m, n, a in NETWORK})


@pytest.mark.parametrize("target", sorted(NETWORK_CASES))
def test_network_access(tmp_path, target):
    finding = assert_dangerous(scan_bytes(tmp_path, NETWORK_CASES[target]), target.rsplit(".", 1)[1])
    assert finding["details"]["family"] in ("network-access", "nested-loader")


@case("GHSA-mhc9-48gj-9gp3.pkl")
def ghsa_mhc9_48gj_9gp3_stdlib_network_protocols() -> bytes:
    """fickling: stdlib protocol clients (SMTP, IMAP, FTP, POP3, Telnet, NNTP) as SSRF, BUILD keeps them alive."""
    parts = [proto(4)]
    for module, cls, port in [("smtplib", "SMTP", 25), ("imaplib", "IMAP4", 143), ("ftplib", "FTP", 21),
                              ("poplib", "POP3", 110), ("telnetlib", "Telnet", 23), ("nntplib", "NNTP", 119)]:
        parts += [global_(module, cls), short_binunicode("127.0.0.1"), binint2(port), tuple2(), reduce(),
                  empty_dict(), build(), b"0"]
    return pickle(*parts, push(None), stop())


def test_ghsa_mhc9_48gj_9gp3_stdlib_network_protocols(tmp_path):
    result = scan_case(tmp_path, ghsa_mhc9_48gj_9gp3_stdlib_network_protocols)
    for target in ("smtplib.SMTP", "imaplib.IMAP4", "ftplib.FTP", "poplib.POP3", "telnetlib.Telnet", "nntplib.NNTP"):
        assert_dangerous(result, target)


@case("picklescan_dns_exfiltration.npy")
def picklescan_dns_exfiltration_npy() -> bytes:
    """An object array whose element resolves a DNS name built from a local file (ssl.get_server_certificate)."""
    inner = pickle(proto(2), global_("ssl", "get_server_certificate"),
                   push((("modelaudit-test.dns-logger.invalid", 443),), 2), reduce(), stop())
    return npy_object(inner)


def test_picklescan_dns_exfiltration_npy(tmp_path):
    assert_dangerous(scan_case(tmp_path, picklescan_dns_exfiltration_npy), "ssl.get_server_certificate")


# ----------------------------------------------------------------------------- native code
@case("GHSA-4675-36f9-wf6r.pkl")
def ghsa_4675_36f9_wf6r_ctypes_cdll() -> bytes:
    return reduce_pickle("ctypes", "CDLL", None)


@case("CVE-2026-22609.pkl")
def cve_2026_22609_ctypes_cdll_system() -> bytes:
    """fickling: getattr(ctypes.CDLL('libc'), 'system')(b'echo ...')."""
    return pickle(proto(5), callee("builtins", "getattr"), call("ctypes", "CDLL", "libc.so.6"), push("system"),
                  tuple2(), reduce(), short_binbytes(HARMLESS_CMD.encode()), tuple1(), reduce(), stop())


def test_ghsa_4675_36f9_wf6r_ctypes_cdll(tmp_path):
    finding = assert_dangerous(scan_case(tmp_path, ghsa_4675_36f9_wf6r_ctypes_cdll), "ctypes.CDLL")
    assert finding["details"]["family"] == "native-code"


def test_cve_2026_22609_ctypes_cdll_system(tmp_path):
    result = scan_case(tmp_path, cve_2026_22609_ctypes_cdll_system)
    assert_dangerous(result, "ctypes.CDLL")
    assert_dangerous(result, "ctypes.CDLL.system")  # getattr on the CDLL instance, resolved


NATIVE = [("ctypes", "cdll.LoadLibrary", ("libc.so.6",)), ("_ctypes", "dlopen", ("libc.so.6", 0)),
          ("ctypes.util", "find_library", ("c",)), ("numpy.ctypeslib", "load_library", ("libc", "/lib")),
          ("cffi", "FFI", ()), ("torch.ops", "load_library", ("/tmp/modelaudit-test.so",)),
          ("torch.classes", "load_library", ("/tmp/modelaudit-test.so",))]


NATIVE_CASES = family("native", {f"{m}.{n}": (f"native_{m}_{n}.pkl", reduce_pickle(m, n, *a)) for m, n, a in NATIVE})


@pytest.mark.parametrize("target", sorted(NATIVE_CASES))
def test_native_code(tmp_path, target):
    assert_dangerous(scan_bytes(tmp_path, NATIVE_CASES[target]), target)


@case("picklescan_malicious9_sys_exit.pkl")
def picklescan_sys_exit() -> bytes:
    return reduce_pickle("sys", "exit", 0)


def test_picklescan_sys_exit(tmp_path):
    assert_dangerous(scan_case(tmp_path, picklescan_sys_exit), "sys.exit")
