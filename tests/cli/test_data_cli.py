import json

from cellgi.cli import data as data_cli


def _run(argv):
    import argparse

    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    data_cli.add_parser(sub)
    args = p.parse_args(argv)
    return args.func(args)


def _spec(tmp_path, body):
    p = tmp_path / "s.yaml"
    p.write_text(body)
    return str(p)


SYN = "name: t\ndata:\n  synthetic: {num_genes: 100, num_samples: 200, edge_types: {a: 200}, directed: []}\n"


def test_summary_json_and_table(tmp_path, capsys):
    path = _spec(tmp_path, SYN)
    assert _run(["data", "summary", path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["genes"] == 100 and out["samples"]["digenic"] + out["samples"]["trigenic"] == 200
    assert _run(["data", "summary", path, "--unmapped"]) == 0
    assert "edge types" in capsys.readouterr().out


def test_summary_bad_spec_and_data_error(tmp_path, capsys):
    assert _run(["data", "summary", _spec(tmp_path, "name: t\ndata: {synthetic: {num_genes: x}}\n")]) == 2
    assert "num_genes" in capsys.readouterr().err
    bad = ("name: t\ndata:\n  graphs: [{name: p, format: edgelist, path: nope.txt}]\n"
           "  screens: [{format: kuzmin, path: nope.tsv}]\n")
    assert _run(["data", "summary", _spec(tmp_path, bad)]) == 1
    assert "nope.txt: input file not found" in capsys.readouterr().err


def test_summary_unmapped_listing_real(yeast_dir, tmp_path, capsys):
    body = (f"name: r\ndata:\n  root: {yeast_dir}\n  genes: {{source: sgd_features, path: genes/SGD_features.tab}}\n"
            "  graphs: [{name: regulatory, format: regulatory, path: networks/other/regulatory_2010.tsv, directed: true}]\n"
            "  screens: [{format: kuzmin, path: interactions/kuzmin_format_screen_dev.tsv}]\n")
    assert _run(["data", "summary", _spec(tmp_path, body), "--json", "--unmapped"]) == 0
    out = json.loads(capsys.readouterr().out)
    reg = [u for u in out["unmapped"] if "regulatory" in u["source"]][0]
    assert reg["identifiers"] == len(reg["items"]) > 100
    assert out["edges"]["regulatory"]["edges"] > 40000
