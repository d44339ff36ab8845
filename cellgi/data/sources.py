"""Public data files by name: the ``data_source`` role, and the sources this field uses.

A source says where a file comes from (``url``), where it lands in the data folder (``path``, the
layout the example specs use, so ``data.root`` can point at the folder), its SHA-256 when it is pinned,
its licence, what it holds, and the spec block that reads it. ``cellgi data list`` lists them and
``cellgi data get NAME`` downloads one (:mod:`cellgi.data.fetch`).

A checksum is pinned only where it was computed from the very file: the four marked "pinned" below
were hashed from the project's copies in ``../shared/data/yeast``, which are byte for byte the files at
those addresses (same size, same first and last lines; the GitHub addresses name a commit). Every other
source says "not pinned" and its first download prints the hash it found.

A lab adds its own source as a plugin, in the entry-point group ``cellgi.data_sources``::

    from cellgi.data.sources import DataSource
    from cellgi.registry import register

    @register("data_source", "my_lab_screen", summary="our 2026 screen (Data S1 layout)")
    class MyLabScreen(DataSource):
        url = "https://lab.example.org/files/screen_2026.tsv"
        path = "interactions/my_lab_screen_2026.tsv"
        sha256 = "..."   # computed from the file itself, or None
        licence = "CC BY 4.0"
        layout = "Kuzmin 2018 Data S1 columns"
        spec_block = "screens: [{format: kuzmin, path: interactions/my_lab_screen_2026.tsv}]"
"""

from __future__ import annotations

from typing import Any, ClassVar

from cellgi.registry import get_registry, register

__all__ = ["BUILTIN_SOURCES", "DataSource", "get_source", "list_sources"]


class DataSource:
    """Base of the ``data_source`` role: one public file, described by class attributes.

    Attributes:
        url: download address (http, https or ftp).
        path: where the file lands, relative to the data folder (``data.root``).
        sha256: the file's SHA-256 (of what ``url`` serves), or ``None`` when not pinned.
        size: bytes of what ``url`` serves, where known from the pinned file (else ``None``).
        licence: the provider's licence or terms.
        citation: the publication to cite.
        layout: what the file holds, column by column where it matters.
        spec_block: the spec block that reads the file (paths relative to ``data.root``), or ``None``
            when no built-in format reads it as published (``note`` then says what to do).
        archive: ``None`` (the file as served), ``"gzip"`` (served gzipped, kept decompressed) or
            ``"zip:MEMBER"`` (one member of a served zip archive is kept).
        needs: other sources the spec block also reads (fetched with this one).
        note: anything a user must know (a site that refuses scripted downloads, a conversion).
    """

    url: ClassVar[str] = ""
    path: ClassVar[str] = ""
    sha256: ClassVar[str | None] = None
    size: ClassVar[int | None] = None
    licence: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    layout: ClassVar[str] = ""
    spec_block: ClassVar[str | None] = None
    archive: ClassVar[str | None] = None
    needs: ClassVar[tuple[str, ...]] = ()
    note: ClassVar[str] = ""

    @property
    def name(self) -> str:
        """The registered name."""
        return type(self).__cellgi_component__["name"]  # type: ignore[attr-defined]

    @property
    def pinned(self) -> bool:
        return self.sha256 is not None

    def describe(self) -> dict[str, Any]:
        """Every field, for listings (``cellgi data list --json``)."""
        return {
            "name": self.name,
            "url": self.url,
            "path": self.path,
            "sha256": self.sha256,
            "pinned": self.pinned,
            "size": self.size,
            "licence": self.licence,
            "citation": self.citation,
            "layout": self.layout,
            "spec_block": self.spec_block,
            "archive": self.archive,
            "needs": list(self.needs),
            "note": self.note,
        }


def get_source(name: str) -> DataSource:
    """The registered source ``name`` (built-in or plugin); an unknown name lists the valid ones."""
    return get_registry("data_source").get(name).build()


def list_sources() -> list[DataSource]:
    """Every registered source, by name (plugins imported; broken ones left out)."""
    reg = get_registry("data_source")
    reg.load_all()
    return [e.build() for _, e in sorted(reg.loaded().items())]


_STRING_V9_CHANNELS = ("neighborhood", "fusion", "cooccurence", "coexpression", "experimental", "database")
_DANGO = "https://raw.githubusercontent.com/ma-compbio/DANGO/master/data"
_DANGO_GENES_COMMIT = "b1c4f6fbda1bcde026399883fd74f300d3e619aa"
_BIONIC = "https://raw.githubusercontent.com/bowang-lab/BIONIC"
_CELLMAP_2016 = ("https://thecellmap.org/costanzo2016/data_files/"
                 "Raw%20genetic%20interaction%20datasets:%20Pair-wise%20interaction%20format.zip")
_BIOGRID = "4.4.235"


@register("data_source", "sgd_features", summary="SGD chromosomal features: the gene list, names and aliases")
class SgdFeatures(DataSource):
    url = "https://downloads.yeastgenome.org/curation/chromosomal_feature/SGD_features.tab"
    path = "genes/SGD_features.tab"
    licence = "CC BY 4.0 (SGD)"
    citation = "Cherry et al. 2012, Nucleic Acids Res. 40:D700; Engel et al. 2014, G3 4:389"
    layout = ("16 tab-separated columns, no header: SGDID, feature type (ORF, ...), qualifier, systematic name, "
              "standard name, aliases (|-separated), parent, secondary SGDID, chromosome, start, stop, strand, ...")
    spec_block = "genes: {source: sgd_features, path: genes/SGD_features.tab}"
    note = "SGD updates this file with each genome release (the project's test copy is R64-2-1), so it is not pinned"


@register("data_source", "go_slim_mapping", summary="GO-slim terms per gene (SGD)")
class GoSlimMapping(DataSource):
    url = "https://downloads.yeastgenome.org/curation/literature/go_slim_mapping.tab"
    path = "annotations/go_slim_mapping.tab"
    licence = "CC BY 4.0 (GO Consortium and SGD)"
    citation = "The Gene Ontology Consortium, Nucleic Acids Res. 2021, 49:D325"
    layout = ("7 tab-separated columns, no header: systematic name, standard name, SGDID, aspect (C/F/P), "
              "GO-slim term, GO id, feature type")
    spec_block = "features: [{type: go_slim, path: annotations/go_slim_mapping.tab, min_genes: 20}]"
    note = ("updated by SGD over time (not pinned); it carries no evidence codes, so terms inferred from "
            "genetic interactions cannot be removed and may leak the target")


@register("data_source", "string_v11_actions", summary="STRING v11.0 typed links (actions) of S. cerevisiae")
class StringV11Actions(DataSource):
    url = "https://version-11-0.string-db.org/download/protein.actions.v11.0/4932.protein.actions.v11.0.txt.gz"
    path = "networks/string_v11/4932.protein.actions.v11.0.txt.gz"
    sha256 = "5706744abb7af6082562d00282837dbd95ac9ef26c64eb313a96543e78a394f4"
    size = 3_146_834
    licence = "CC BY 4.0 (STRING)"
    citation = "Szklarczyk et al. 2019, Nucleic Acids Res. 47:D607"
    layout = ("gzipped TSV with header item_id_a item_id_b mode action is_directional a_is_acting score; "
              "ids 4932.<ORF>, score 0-1000; 769,028 rows")
    spec_block = ("graphs: [{name: string_actions, format: string_actions, "
                  "path: networks/string_v11/4932.protein.actions.v11.0.txt.gz, min_score: 400, directed: true}]")


@register("data_source", "string_v9_genes", summary="the gene list indexing DANGO's STRING v9.1 networks")
class StringV9Genes(DataSource):
    url = f"https://raw.githubusercontent.com/ma-compbio/DANGO/{_DANGO_GENES_COMMIT}/data/yeast_network/yeast_string_genes.txt"
    path = "networks/string_v9.1/genes.txt"
    sha256 = "05e4968043601583ecad502bb95fcc46a1ec3bf89f4cba333a051302b759cab7"
    size = 51_895
    licence = "MIT (DANGO, Ma Lab at CMU)"
    citation = "Zhang, Bafna, Ma & Ma, DANGO (bioRxiv 2020.11.26.400739)"
    layout = "one ORF per line, 6,399 lines; line n is node id n of the STRING v9.1 channel files"
    spec_block = None
    note = "read through the genes_path of a string_v9_<channel> source"


def _string_v9(channel: str) -> type[DataSource]:
    class StringV9Channel(DataSource):
        url = f"{_DANGO}/yeast_network/yeast_string_{channel}_adjacency.txt"
        path = f"networks/string_v9.1/{channel}.txt"
        licence = "MIT (DANGO files); STRING's own licence for the underlying data"
        citation = "Franceschini et al. 2013, Nucleic Acids Res. 41:D808; processing: DANGO (bioRxiv 2020)"
        layout = "id_a id_b weight, whitespace-separated; ids are 1-based lines of string_v9_genes, weight in (0, 1]"
        spec_block = (f"graphs: [{{name: string_{channel}, format: string_v9, path: networks/string_v9.1/{channel}.txt, "
                      "genes_path: networks/string_v9.1/genes.txt}]")
        needs = ("string_v9_genes",)

    StringV9Channel.__name__ = StringV9Channel.__qualname__ = f"StringV9{channel.capitalize()}"
    return register("data_source", f"string_v9_{channel}",
                    summary=f"STRING v9.1 {channel} channel as processed for DANGO")(StringV9Channel)


for _channel in _STRING_V9_CHANNELS:
    globals()[f"StringV9{_channel.capitalize()}"] = _string_v9(_channel)


@register("data_source", "krogan2006_physical", summary="affinity-purification physical interactions (via BIONIC)")
class Krogan2006Physical(DataSource):
    url = f"{_BIONIC}/07921dae6c95bff8193fdcb0bb9c8a785dc7f370/bionic/inputs/Krogan.txt"
    path = "networks/other/physical_krogan2006.txt"
    sha256 = "87c9aa3edb5c0b92c6c29b9320a1c897ecd5a8e763e4323bb63e6419d495348b"
    size = 113_672
    licence = "MIT (BIONIC); the publication's terms for the underlying data"
    citation = "Krogan et al. 2006, Nature 440:637; BIONIC: Forster et al. 2022, Nat. Methods 19:1250"
    layout = "ORF ORF, space-separated, unweighted; 7,075 rows"
    spec_block = "graphs: [{name: physical, format: edgelist, path: networks/other/physical_krogan2006.txt}]"


@register("data_source", "hu2007_coexpression", summary="coexpression network (via BIONIC)")
class Hu2007Coexpression(DataSource):
    url = f"{_BIONIC}/c01cdae28c09fa77f2196c5fcbc3f059ba527208/bionic/inputs/Hu-2007.txt"
    path = "networks/other/coexpression_hu2007.txt"
    sha256 = "759c56374978221b308afcc53a6db2569a56213472c666c2343a58d2e48ce359"
    size = 521_253
    licence = "MIT (BIONIC); the publication's terms for the underlying data"
    citation = "Hu et al. 2007; BIONIC: Forster et al. 2022, Nat. Methods 19:1250"
    layout = "ORF ORF weight, space-separated; 14,826 rows"
    spec_block = ("graphs: [{name: coexpression, format: edgelist, path: networks/other/coexpression_hu2007.txt, "
                  "weighted: true}]")


@register("data_source", "biogrid", summary=f"BioGRID {_BIOGRID} interactions of S. cerevisiae S288c (tab3)")
class BioGrid(DataSource):
    url = (f"https://downloads.thebiogrid.org/Download/BioGRID/Release-Archive/BIOGRID-{_BIOGRID}/"
           f"BIOGRID-ORGANISM-{_BIOGRID}.tab3.zip")
    path = f"networks/biogrid/BIOGRID-ORGANISM-Saccharomyces_cerevisiae_S288c-{_BIOGRID}.tab3.txt"
    archive = f"zip:BIOGRID-ORGANISM-Saccharomyces_cerevisiae_S288c-{_BIOGRID}.tab3.txt"
    licence = "MIT (BioGRID)"
    citation = "Oughtred et al. 2021, Protein Sci. 30:187"
    layout = ("TSV with header (BioGRID tab3): physical and genetic interactions; 'Systematic Name Interactor A/B' "
              "are ORFs, 'Experimental System Type' is physical or genetic. The archive holds every organism; "
              "only the S288c member is kept")
    spec_block = (f"graphs: [{{name: biogrid, format: table, path: networks/biogrid/"
                  f"BIOGRID-ORGANISM-Saccharomyces_cerevisiae_S288c-{_BIOGRID}.tab3.txt, "
                  "source_column: 'Systematic Name Interactor A', target_column: 'Systematic Name Interactor B'}]")
    note = "every interaction type in one graph; filter the rows (e.g. physical only) into a table of your own to split them"


@register("data_source", "costanzo2010", summary="Costanzo 2010 genome-scale SGA screen, stringent cutoff")
class Costanzo2010(DataSource):
    url = "http://drygin.ccbr.utoronto.ca/%7Ecostanzo2009/sgadata_costanzo2009_stringentCutoff_101120.txt.gz"
    path = "interactions/sgadata_costanzo2009_stringentCutoff_101120.txt"
    archive = "gzip"
    licence = "journal supplementary data: the publisher's terms (free for research)"
    citation = "Costanzo et al. 2010, Science 327:425"
    layout = ("7 tab-separated columns, no header: query strain, query name, array strain, array name, epsilon, "
              "standard deviation, p-value; only significant interactions are listed (the rest of the query x array "
              "grid is neutral)")
    note = "no built-in screen format reads this headerless listing yet: add a header and read it with format: table"


@register("data_source", "costanzo2016", summary="Costanzo 2016 global genetic interaction network (pairwise)")
class Costanzo2016(DataSource):
    url = _CELLMAP_2016
    path = "interactions/costanzo2016/SGA_ExN_NxE.txt"
    archive = "zip:SGA_ExN_NxE.txt"
    licence = "journal supplementary data: the publisher's terms (free for research)"
    citation = "Costanzo et al. 2016, Science 353:aaf1420"
    layout = ("TSV with header: Query Strain ID, Query allele name, Array Strain ID, Array allele name, "
              "Arraytype/Temp, Genetic interaction score (epsilon), P-value, query and array single mutant fitness, "
              "double mutant fitness and its sd; this member is the essential x nonessential screen (the archive "
              "also holds SGA_ExE.txt and SGA_NxN.txt)")
    note = ("single-gene queries are digenic, while format: kuzmin reads a query without the YDL227C marker as "
            "trigenic: convert to a table with gene columns and read it with format: table")


@register("data_source", "smf_costanzo2016", summary="single-mutant fitness of the SGA strain collections")
class SmfCostanzo2016(DataSource):
    url = _CELLMAP_2016
    path = "interactions/costanzo2016/strain_ids_and_single_mutant_fitness.xlsx"
    archive = "zip:strain_ids_and_single_mutant_fitness.xlsx"
    licence = "journal supplementary data: the publisher's terms (free for research)"
    citation = "Costanzo et al. 2016, Science 353:aaf1420"
    layout = "Excel workbook: strain id, allele, single-mutant fitness at 26 C and 30 C with standard deviations"
    note = ("export the strain id, fitness and sd columns to a TSV, then read it as a gene feature: "
            "{type: table, path: FILE, header: false, column_names: [fitness, fitness_sd], strip_suffix: true, "
            "prefix: smf} (as configs/yeast_real.yaml does)")


@register("data_source", "kuzmin2018", summary="Kuzmin 2018 trigenic and digenic SGA scores (Data S1)")
class Kuzmin2018(DataSource):
    url = f"{_DANGO}/AdditionalDataS1.tsv"
    path = "interactions/kuzmin2018_data_s1.tsv"
    licence = "journal supplementary data: the publisher's terms (free for research); copy kept by DANGO (MIT)"
    citation = "Kuzmin et al. 2018, Science 360:eaao1729"
    layout = ("Data S1 TSV: Query strain ID, Array strain ID, Combined mutant type, Adjusted genetic interaction "
              "score (epsilon or tau), P-value, Double/triple mutant fitness, ...; about 91,000 triplets")
    spec_block = "screens: [{format: kuzmin, path: interactions/kuzmin2018_data_s1.tsv, duplicates: mean}]"
    note = "the copy in the DANGO repository (the paper's own supplement at science.org holds the same table)"


@register("data_source", "kuzmin2020", summary="Kuzmin 2020 trigenic screens of duplicated genes (Tables S1-S13)")
class Kuzmin2020(DataSource):
    url = "https://www.science.org/doi/suppl/10.1126/science.aaz5667/suppl_file/aaz5667-tables_s1_to_s13.zip"
    path = "interactions/kuzmin2020/aaz5667-Table-S1.xlsx"
    archive = "zip:aaz5667-Table-S1.xlsx"
    licence = "journal supplementary data: the publisher's terms (free for research)"
    citation = "Kuzmin et al. 2020, Science 368:eaaz5667 (also Dryad doi:10.5061/dryad.g79cnp5m9)"
    layout = "Excel workbook (Table S1, main screens) with the Data S1 columns of Kuzmin 2018; about 332,000 triplets"
    note = ("science.org often refuses scripted downloads: fetch the zip in a browser and run "
            "'cellgi data get kuzmin2020 --file ZIP'; export Table S1 to TSV and read it with "
            "{format: kuzmin, path: FILE, duplicates: mean}")


#: the names of the sources cellgi ships
BUILTIN_SOURCES = tuple(sorted(
    ["sgd_features", "go_slim_mapping", "string_v11_actions", "string_v9_genes", "krogan2006_physical",
     "hu2007_coexpression", "biogrid", "costanzo2010", "costanzo2016", "smf_costanzo2016", "kuzmin2018",
     "kuzmin2020", *(f"string_v9_{c}" for c in _STRING_V9_CHANNELS)]
))
