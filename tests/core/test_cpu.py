"""The CPU reader both the bfloat16 switch and the speed reports use."""

from vaelab.core.cpu import cpu_fields, cpu_flags


def test_reads_the_first_processors_fields_and_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n\n"
                    "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n")
    assert cpu_fields(info)["model name"] == "AMD EPYC"
    assert cpu_flags(info) == {"fpu", "avx2", "fma"}


def test_an_unreadable_file_gives_nothing(tmp_path):
    assert cpu_fields(tmp_path / "missing") == {}
    assert cpu_flags(tmp_path / "missing") == set()
