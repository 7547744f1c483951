"""Free-text HPO extraction: label/synonym matching, nested mentions, word order, abbreviations,
coordination, negation scope, spans; the `genedx extract` command; the corpus readers."""

from __future__ import annotations

import pytest

from genedx.extract import TermExtractor, stem
from genedx.home import connect

RECORDS = [
    ("HP:0001250", "Seizure", ["Seizures", "Epilepsy"]),
    ("HP:0002373", "Febrile seizure", ["Fever induced seizures"]),
    ("HP:0001252", "Hypotonia", ["Low muscle tone"]),
    ("HP:0001263", "Global developmental delay", ["Developmental delay"]),
    ("HP:0001251", "Ataxia", []),
    ("HP:0001344", "Absent speech", []),
    ("HP:0002315", "Headache", []),
    ("HP:0000252", "Microcephaly", []),
    ("HP:0004322", "Short stature", []),
    ("HP:0001638", "Cardiomyopathy", []),
    ("HP:0000001", "All", []),           # too short to match in prose
    ("HP:0012345", "Delay", ["Seizure"]),  # a synonym equal to another term's label must not win
]


# The toy ontology's is_a links that matter for nested mentions (Febrile seizure is a Seizure).
ANCESTORS = {"HP:0002373": frozenset({"HP:0001250"})}


@pytest.fixture(scope="module")
def ex() -> TermExtractor:
    return TermExtractor.from_records(RECORDS, ancestors=ANCESTORS)


def found(ex: TermExtractor, text: str) -> list[tuple[str, str]]:
    return [(t.id, t.status) for t in ex.extract(text)]


def test_finds_labels_and_synonyms_with_plurals(ex):
    assert found(ex, "Seizures since infancy, low muscle tone and developmental delay.") == [
        ("HP:0001250", "present"), ("HP:0001252", "present"), ("HP:0001263", "present")]


def test_nested_mentions_report_every_supported_concept_widest_first(ex):
    # "febrile seizures" supports Febrile seizure and, nested, its ancestor Seizure; the toy term
    # "Delay" inside "developmental delay" is not an ancestor of it, so it is not reported.
    terms = ex.extract("She had febrile seizures.")
    assert [(t.id, t.text) for t in terms] == [("HP:0002373", "febrile seizures"), ("HP:0001250", "seizures")]
    assert "HP:0012345" not in {i for i, _ in found(ex, "Global developmental delay.")}


def test_widest_only_mode_keeps_the_first_extractors_behaviour():
    ex1 = TermExtractor.from_records(RECORDS, nested=False)
    assert [(t.id, t.text) for t in ex1.extract("She had febrile seizures.")] == [("HP:0002373", "febrile seizures")]


def test_label_beats_other_terms_synonym(ex):
    assert found(ex, "seizure") == [("HP:0001250", "present")]


@pytest.mark.parametrize("text, negated", [
    ("No seizures.", True),
    ("She denies headaches.", True),
    ("Born without hypotonia.", True),
    ("Negative for ataxia.", True),
    ("No evidence of microcephaly.", True),
    ("Ataxia was absent.", True),
    ("Ataxia was not observed on examination.", True),
    ("Ataxia.", False),
    ("Ataxia was noted.", False),
])
def test_negation_cues(ex, text, negated):
    (term,) = ex.extract(text)
    assert term.negated is negated
    assert (term.cue is not None) is negated


def test_negation_scope_covers_lists_and_stops_at_clause_end(ex):
    text = "No seizures, ataxia or microcephaly, but short stature. Hypotonia at birth."
    assert found(ex, text) == [("HP:0001250", "absent"), ("HP:0001251", "absent"), ("HP:0000252", "absent"),
                               ("HP:0004322", "present"), ("HP:0001252", "present")]


def test_and_with_verb_ends_negation(ex):
    assert found(ex, "No seizures and has hypotonia") == [("HP:0001250", "absent"), ("HP:0001252", "present")]


def test_term_containing_a_cue_word_is_not_a_negation(ex):
    # "Absent speech" is a phenotype; it must neither be negated nor negate what follows.
    assert found(ex, "Absent speech and ataxia.") == [("HP:0001344", "present"), ("HP:0001251", "present")]


def test_affirmed_and_negated_mention_is_kept_as_present(ex):
    assert found(ex, "No seizures until age 3. Seizures then began.") == [("HP:0001250", "present")]
    assert len(ex.mentions("No seizures until age 3. Seizures then began.")) == 2


def test_offsets_point_at_the_words(ex):
    text = "History: denies headaches; hypotonia."
    for t in ex.extract(text):
        assert text[t.start:t.end] == t.text


def test_short_phrases_and_empty_text_find_nothing(ex):
    assert ex.extract("") == []
    assert ex.extract("all of it") == []


def test_stem_is_applied_to_both_sides():
    assert stem("Anomalies") == "anomaly"
    assert stem("ptosis") == "ptosis"


def test_from_db_toy_kb(toy_home):
    con = connect(toy_home)
    try:
        ex = TermExtractor.from_db(con)
        labels = dict(con.execute("SELECT id, label FROM hpo_term").fetchall())
    finally:
        con.close()
    seizure = labels["HP:0001250"]
    terms = ex.extract(f"Recurrent {seizure.lower()}s. No {labels['HP:0001631'].lower()}.")
    assert [(t.id, t.negated) for t in terms] == [("HP:0001250", False), ("HP:0001631", True)]
    # only the phenotypic-abnormality subtree: the root itself is never returned
    assert all(t.id != "HP:0000118" for t in ex.extract("Phenotypic abnormality"))


def test_from_db_real_kb_note(real_home):
    con = connect(real_home, read_only=True)
    try:
        ex = TermExtractor.from_db(con)
    finally:
        con.close()
    note = ("3-year-old girl with febrile seizures and global developmental delay. No hypotonia. "
            "Autosomal dominant inheritance in the family. She denies headaches.")
    got = found(ex, note)
    assert ("HP:0002373", "present") in got          # Febrile seizure
    assert ("HP:0001263", "present") in got          # Global developmental delay
    assert ("HP:0001252", "absent") in got           # Hypotonia
    assert ("HP:0002315", "absent") in got           # Headache
    assert "HP:0000006" not in {i for i, _ in got}   # inheritance is not a phenotype here


# ---- the real ontology: cases from issue 14 -------------------------------------------------------
@pytest.fixture(scope="module")
def real_ex(real_home) -> TermExtractor:
    con = connect(real_home, read_only=True)
    try:
        return TermExtractor.from_db(con)
    finally:
        con.close()


def test_hyphenated_non_does_not_negate_the_mention(real_ex):
    # "non-VIII" qualifies "VIII" only: the nerve tumours are present
    terms = real_ex.extract("Patients develop non-VIII nerve tumors.")
    assert terms and all(not t.negated and t.cue is None for t in terms)
    assert ("HP:0002664", "present") in found(real_ex, "Patients develop non-VIII nerve tumors.")  # Neoplasm


def test_no_seizures_is_absent(real_ex):
    (t,) = real_ex.extract("No seizures.")
    assert (t.id, t.status, t.cue, t.text) == ("HP:0001250", "absent", "no", "seizures")


def test_absence_of_the_corpus_callosum_is_a_finding_not_a_negation(real_ex):
    text = "MRI showed absence of the corpus callosum."
    terms = real_ex.extract(text)
    assert [(t.id, t.status, t.text) for t in terms] == [
        ("HP:0001274", "present", "absence of the corpus callosum")]  # Agenesis of corpus callosum
    # ... and the words do not negate what follows in the clause either
    assert ("HP:0000252", "present") in found(real_ex, "Absence of the corpus callosum and microcephaly.")


def test_abbreviation_defined_in_text_is_recognised_later(real_ex):
    text = ("Brachydactyly type A1 (BDA1) is an autosomal dominant disorder. "
            "All BDA1 patients had short middle phalanges.")
    second = text.rindex("BDA1")
    hits = [m for m in real_ex.mentions(text) if m.start == second]
    assert [(m.id, m.text, m.negated) for m in hits] == [("HP:0009371", "BDA1", False)]  # Type A1 brachydactyly
    # an undefined short form is not a mention
    assert not [m for m in real_ex.mentions("All BDA1 patients.") if m.text == "BDA1"]


def test_nested_mentions_yield_the_inner_concepts(real_ex):
    terms = real_ex.extract("He had bilateral vestibular schwannomas.")
    assert [(t.id, t.text) for t in terms] == [
        ("HP:0009589", "bilateral vestibular schwannomas"),   # Bilateral vestibular schwannoma
        ("HP:0009588", "vestibular schwannomas"),             # Vestibular schwannoma
        ("HP:0100008", "schwannomas")]                        # Schwannoma


def test_span_leaves_out_leading_modifiers_the_label_lacks(real_ex):
    text = "She has severe scoliosis and unilateral microphthalmia."
    assert [(t.id, t.text) for t in real_ex.extract(text)] == [("HP:0002650", "scoliosis"),
                                                                ("HP:0000568", "microphthalmia")]


def test_malformation_means_abnormal_morphology(real_ex):
    # "Abnormal renal morphology" (its synonym "Renal malformation"), not "Abnormality of the kidney"
    assert found(real_ex, "malformations of the kidney") == [("HP:0012210", "present")]
    assert found(real_ex, "Anomalies of the kidney") == [("HP:0000077", "present")]


def test_one_mention_per_term_over_overlapping_words(real_ex):
    # "nevoid basal cell" (synonym "basal cell nevus") and "basal cell carcinoma" overlap: the head wins
    text = "Nevoid basal cell carcinoma syndrome"
    bcc = [m for m in real_ex.mentions(text) if m.id == "HP:0002671"]
    assert [m.text for m in bcc] == ["basal cell carcinoma"]


def test_comparison_is_not_a_negation_of_the_findings(real_ex):
    text = "No difference in survival was observed between cells from basal cell carcinoma patients."
    assert ("HP:0002671", "present") in found(real_ex, text)
    assert found(real_ex, "No significant scoliosis.") == [("HP:0002650", "absent")]


def test_coordinated_two_word_conjunct(real_ex):
    ids = {i for i, _ in found(real_ex, "posterior subcapsular or capsular cataract")}
    assert {"HP:0007787", "HP:0100017"} <= ids   # Posterior subcapsular / Capsular cataract


def test_laboratory_wording_and_direction_synonyms(real_ex):
    # "serum", "level" are optional; "elevated" / "increased" and "reduced" / "decreased" are one direction
    assert ("HP:0003236", "present") in found(real_ex, "Serum creatine kinase level was elevated.")
    assert ("HP:0003155", "present") in found(real_ex, "Increased level of alkaline phosphatase.")
    assert ("HP:0001315", "present") in found(real_ex, "Diminished tendon reflexes.")  # Reduced tendon reflexes
    # without a direction the level words stay: "abnormal protein" is not an abnormal protein level
    assert "HP:0010876" not in {i for i, _ in found(real_ex, "an abnormal protein")}
    assert found(real_ex, "lack of concentration") == [("HP:0031987", "present")]
    # "lower" before a noun is not "low": no Hypotonia from "muscle tone in his lower limbs"
    assert "HP:0001252" not in {i for i, _ in found(real_ex, "muscle tone in his lower limbs")}


def test_adverb_inside_a_mention_is_skipped(real_ex):
    assert ("HP:0012473", "present") in found(real_ex, "Her tongue was obviously atrophic.")  # Tongue atrophy


def test_british_spellings_match_american_labels(real_ex):
    # "ae" / "oe" inside a word and British endings ("-ised", "-tre", "grey") are folded to the
    # American spelling of the HPO labels
    got = {i for i, _ in found(real_ex, "Hyperkalaemia, haematuria and oedema; generalised hypotonia.")}
    assert {"HP:0002153", "HP:0000790", "HP:0000969", "HP:0001290"} <= got  # Hyperkalemia, Hematuria, Edema
    assert ("HP:0002282", "present") in found(real_ex, "grey matter heterotopia")  # Gray matter heterotopia


def test_accented_letters_and_unicode_hyphens(real_ex):
    # "café" is not cut at the accent; U+2010 is a hyphen; offsets and text are the note's own
    for text in ("Six café-au-lait spots.", "Six cafe\u2010au\u2010lait spots."):
        (t,) = real_ex.extract(text)
        assert t.id == "HP:0000957" and text[t.start:t.end] == t.text   # Cafe-au-lait spot


@pytest.mark.parametrize("text", [
    "Thrombocytopenia with absent radii.",                                 # "absent" qualifies "radii"
    "absent/hypoplastic flexion creases, scoliosis and thrombocytopenia",  # ... its own phrase only
    "Thrombocytopenia caused by a dominant-negative variant.",             # hyphenated post-cue
    "Short stature with or without scoliosis.",                            # a choice, not a negation
    "We cannot say whether or not scoliosis is related.",
    "There was no clear genotype-phenotype correlation with the degree of scoliosis.",
    "No pathogenic variant was found in any of the genes known to cause scoliosis.",  # too far
    "Family history\tNo\tSevere scoliosis",                                # a tab ends a table cell
])
def test_negation_scope_limits(real_ex, text):
    got = dict(found(real_ex, text))
    assert got.get("HP:0002650", got.get("HP:0001873")) == "present"   # Scoliosis / Thrombocytopenia


def test_negation_reaches_across_a_list_of_findings(real_ex):
    text = "There were no fasciculations, tongue atrophy, ptosis, scoliosis or joint contractures."
    got = dict(found(real_ex, text))
    assert got["HP:0002650"] == "absent" and got["HP:0000508"] == "absent"   # Scoliosis, Ptosis
    assert found(real_ex, "Scoliosis and ptosis were absent.") == [("HP:0002650", "absent"),
                                                                   ("HP:0000508", "absent")]


def test_a_synonym_as_written_beats_the_normalised_key():
    # "Lipomas" is a synonym of Multiple lipomas; its normal form is Lipoma's label
    ex = TermExtractor.from_records([("HP:0012032", "Lipoma", []),
                                     ("HP:0001012", "Multiple lipomas", ["Lipomas"])])
    assert found(ex, "She has lipomas.") == [("HP:0001012", "present")]
    assert found(ex, "A lipoma on the back.") == [("HP:0012032", "present")]
    # ... but not a generic "X anomalies" synonym: the label with the same words is the literal one
    ex = TermExtractor.from_records([("HP:0000598", "Abnormality of the ear", []),
                                     ("HP:0000356", "Abnormality of the outer ear", ["Ear anomalies"])])
    assert found(ex, "Ear anomalies.") == [("HP:0000598", "present")]


def test_possessive_eponyms(real_ex):
    # "'s" is not a word: "Gower's sign" is HPO's "Gowers sign", "Babinski's sign" its "Babinski sign"
    assert ("HP:0003391", "present") in found(real_ex, "Gower\u2019s sign was positive.")
    assert ("HP:0003487", "present") in found(real_ex, "A Babinski's sign on the left.")
    assert ("HP:0002251", "present") in found(real_ex, "Hirschsprung's disease")  # Aganglionic megacolon


def test_head_distributes_over_later_conjuncts(real_ex):
    # "hypoplasia of the radius and ulna" is also Hypoplasia of the ulna
    ids = {i for i, _ in found(real_ex, "Hypoplasia of the radius and ulna.")}
    assert {"HP:0002984", "HP:0003022"} <= ids   # Hypoplasia of the radius / of the ulna
    ids = {i for i, _ in found(real_ex, "Contractures of the wrists, knees, and ankles.")}
    assert {"HP:0034671", "HP:0034677"} <= ids   # Knee / Ankle contracture
    # a conjunct that modifies the next word is not distributed over: no Anonychia ("absence of nail")
    assert "HP:0001798" not in {i for i, _ in found(real_ex, "absence of hair and nail dystrophy")}


def test_adjectives_reach_their_nouns(real_ex):
    # HPO words a finding as a noun, the text as an adjective (or the other way round)
    assert found(real_ex, "The infant was hypotonic.") == [("HP:0001252", "present")]        # Hypotonia
    assert found(real_ex, "She was dysarthric.") == [("HP:0001260", "present")]              # Dysarthria
    assert ("HP:0000168", "present") in found(real_ex, "gingival abnormalities")  # Abnormality of the gingiva
    assert ("HP:0001395", "present") in found(real_ex, "a fibrotic liver")                   # Hepatic fibrosis
    # a stem the adjective shares with another word is not re-keyed: a neutrophil is no Neutrophilia
    assert found(real_ex, "neutrophils and eosinophils") == []
    # ... and a general adjective keeps its sense ("focal" is not "focus", "renal pelvis" no Pelvic kidney)
    assert "HP:0000125" not in {i for i, _ in found(real_ex, "dilatation of the renal pelvis")}


def test_slash_between_words_joins_alternatives(real_ex):
    # Bilateral tonic-clonic seizure
    assert ("HP:0002069", "present") in found(real_ex, "generalized tonic/clonic seizures")
    assert ("HP:0009601", "present") in found(real_ex, "absent/hypoplastic thumbs")  # Aplasia/Hypoplasia of the thumb
    assert found(real_ex, "seizures and/or ataxia") == [("HP:0001250", "present"), ("HP:0001251", "present")]


def test_hyphenated_non_and_free_negate_their_own_word(ex):
    assert found(ex, "He has been seizure-free for two years.") == [("HP:0001250", "absent")]
    assert found(ex, "non-febrile seizures") == [("HP:0002373", "absent"), ("HP:0001250", "present")]
    assert found(ex, "a non-progressive ataxia") == [("HP:0001251", "present")]  # "non-" qualifies "progressive"


def test_a_counted_finding_is_one_finding():
    # "multiple nevi" is Numerous nevi; the nested "nevi" states no second finding
    ex = TermExtractor.from_records([("HP:0003764", "Nevus", ["Nevi"]),
                                     ("HP:0001054", "Numerous nevi", ["Multiple nevi"])],
                                    ancestors={"HP:0001054": frozenset({"HP:0003764"})})
    assert found(ex, "She had multiple nevi.") == [("HP:0001054", "present")]
    assert found(ex, "She had nevi.") == [("HP:0003764", "present")]


def test_participle_before_a_noun_is_no_one_word_mention(real_ex):
    # "collecting" is a synonym of Collectionism; "collecting system" is anatomy
    assert "HP:0030212" not in {i for i, _ in found(real_ex, "duplication of the urinary collecting system")}
    assert ("HP:0030212", "present") in found(real_ex, "Compulsive collecting.")
    assert ("HP:0002013", "present") in found(real_ex, "Vomiting during feeds.")   # Vomiting


def test_not_negates_its_own_predicate_only(ex):
    # the copula "were" starts the main clause's predicate, outside the scope of "not"
    assert found(ex, "Children who were not sedated were examined for ataxia.") == [("HP:0001251", "present")]
    assert found(ex, "Ataxia was not seen.") == [("HP:0001251", "absent")]
    assert found(ex, "She did not have seizures.") == [("HP:0001250", "absent")]


def test_irregular_and_latin_plurals():
    from genedx.extract.tokens import normal_form
    assert normal_form("feet") == normal_form("foot")
    assert normal_form("phalanges") == normal_form("phalanx")
    assert normal_form("halluces") == normal_form("hallux")
    assert normal_form("lentigines") == normal_form("lentigo")


def test_head_before_its_noun_distributes_over_one_conjunct(real_ex):
    assert ("HP:0000175", "present") in found(real_ex, "cleft lip and palate")       # Cleft palate
    assert ("HP:0001773", "present") in found(real_ex, "small hands and feet")       # Short foot
    # a comma list is a list of findings: "gait ataxia, spasticity" is no Spastic gait
    assert "HP:0002064" not in {i for i, _ in found(real_ex, "gait ataxia, spasticity and dysphagia")}


def test_like_is_optional_inside_a_mention(real_ex):
    assert ("HP:0000914", "present") in found(real_ex, "a shield-like chest")       # Shield chest
    assert ("HP:0003316", "present") in found(real_ex, "butterfly-like vertebrae")  # Butterfly vertebrae
    # ... and so is "shaped": "triangular-shaped face" is Triangular face, "Pear-shaped nose" keeps it
    assert ("HP:0000325", "present") in found(real_ex, "a triangular-shaped face")  # Triangular face
    assert found(real_ex, "pear-shaped nose") == [("HP:0000447", "present")]      # Pear-shaped nose
