"""What the gateway answers to each file of ../shared/corpus/edifact, checked as the partner
whose UNB sender it is and addressed to us, so that the file"s own content decides.

Each entry: (answer kind, interchange-level 0085 codes, per message (type, its 0085 codes)).
Messages of types the gateway does not take get 14 (not supported) or, with a schema, their
validation findings first.  Notes say why where the file"s name does not.  The envelope's
service segments are checked against their ISO 9735 definitions in the declared syntax version
(dates n6 before syntax 4, n8 in it; code lists but 0007's), so a file whose UNB or UNG breaks
them is rejected whole.
"""

from __future__ import annotations

Verdict = tuple[str, tuple[int, ...], tuple[tuple[str, tuple[int, ...]], ...]]

NOT_SUPPORTED = 14

VERDICTS: dict[str, Verdict] = {
    "NEG_empty_segment.edi": ("CONTRL", (), (("PNRGOV", (14,)),)),
    "NEG_invoic_d00a_invalid_header.edi": ("ERROR_REPORT", (4,), ()),
    "NEG_invoic_d00a_invalid_trailers.edi": ("CONTRL", (4,), ()),
    # UNG+1+2+3+4:44+5+6+7:77+8: date '4' and time '44' shorter than n6/n4 (40), controlling
    # agency '6' in no 0051 list (12); and no UNE (4)
    "NEG_invoic_d00a_missing_une.edi": ("CONTRL", (4, 12, 40), ()),
    "NEG_invoic_d00a_missing_unz.edi": ("CONTRL", (4, 21, 33), ()),
    "NEG_invoic_d00a_valid_and_invalid_msg.edi": ("CONTRL", (28, 29), ()),
    "NEG_invoic_d96a_missing_bgm.edi": ("ERROR_REPORT", (4,), ()),
    "NEG_invoic_d97b_bad.edi": ("CONTRL", (), (("INVOIC", (14,)),)),
    "NEG_orders_d01b_bgm_before_unh.edi": ("ERROR_REPORT", (4,), ()),
    "NEG_orders_d01b_eancom_latin1_release_err.edi": ("CONTRL", (), (("ORDERS", (14,)),)),
    # UNOA:4 with 6-digit UNB and UNG dates: syntax 4's S004 0017 is n8 (CCYYMMDD)
    "NEG_paxlst_d03b_bad.edi": ("CONTRL", (40,), ()),
    "NEG_unknown_msg_other_dialect.edi": ("CONTRL", (), (("CUSTOM", (14,)),)),
    "aperak_d96a_bots_generated.edi": ("CONTRL", (), (("APERAK", (3,)),)),  # D96A: not held
    "aperak_d96a_v3_accepted.edi": ("CONTRL", (), (("APERAK", (29,)),)),  # UNT+8 for 7 segments
    "aperak_d96a_v3_rejected.edi": ("CONTRL", (), (("APERAK", (29,)),)),  # UNT+8 for 7 segments
    # UNOA:4 with a 6-digit UNB date: syntax 4's S004 0017 is n8 (CCYYMMDD), the fault the
    # file is named for
    "aperak_d96a_v4_rejected_yymmdd.edi": ("CONTRL", (40,), ()),
    # UNOA:2 with the 8-digit UNB date 00091022: syntax 1-3's S004 0017 is n6 (YYMMDD)
    "baplie_d04b.edi": ("CONTRL", (39,), ()),
    "baplie_d95b_smdg20.edi": ("CONTRL", (), (("BAPLIE", (14,)),)),
    "coarri_d95b_itgoa.edi": ("CONTRL", (), (("COARRI", (3,)), ("COARRI", (3,)))),  # D95B: not held
    "coprar_d95b_no_envelope.edi": ("ERROR_REPORT", (4,), ()),  # UNH without UNB: no UNB to answer
    "cuscar_d95b_uk_simple.edi": (
        "CONTRL",
        (),
        (("CUSCAR", (29,)),),
    ),  # UNT says 313, the message has 31 segments
    "desadv_d96a.edi": ("CONTRL", (), (("DESADV", (14,)),)),
    # UTF-8 under UNOC: "Ë" is C3 8B, and 0x8B is the C1 control U+008B in ISO 8859-1, which
    # has no graphic character there: no repertoire holds it.
    "desadv_d96a_unoc_utf8_bytes.edi": ("CONTRL", (), (("DESADV", (21,)),)),
    "iftsai_d99b_portofrotterdam_1.edi": (
        "CONTRL",
        (4,),
        (),
    ),  # no UNZ: the interchange is cut short
    "iftsai_d99b_portofrotterdam_2.edi": (
        "CONTRL",
        (4,),
        (),
    ),  # no UNZ: the interchange is cut short
    "iftsta_d00b.edi": ("CONTRL", (28,), ()),  # UNZ reference 2805570, UNB 2803570
    "infent_d00b_fr_dgfip_prefix_unol_ung.edi": (
        "ERROR_REPORT",
        (4,),
        (),
    ),  # a text header before UNA: no UNB to answer
    "invoic_d00a_bom.edi": (
        "CONTRL",
        (),
        (("INVOIC", (21,)),),
    ),  # UNOB declared, a Latin-1 byte in LOC
    "invoic_d00a_escaped_repetition_v4.edi": (
        "CONTRL",
        (),
        (("INVOIC", (21,)),),
    ),  # UNOB declared, a Latin-1 byte in LOC
    # trailers wrong (28, 29); UNG+1+2+3+4:44+5+6+...: date and time too short (40), agency
    # '6' in no 0051 list (12)
    "invoic_d00a_group_multiple_messages.edi": ("CONTRL", (12, 28, 29, 40), ()),
    "invoic_d00a_nondefault_separators.edi": (
        "CONTRL",
        (),
        (("INVOIC", (21,)),),
    ),  # UNOB declared, a Latin-1 byte in LOC
    "invoic_d00a_repeating_data_element_v4.edi": (
        "CONTRL",
        (),
        (("INVOIC", (21,)),),
    ),  # UNOB declared, a Latin-1 byte in LOC
    "invoic_d97a_unoa1.edi": ("CONTRL", (), (("INVOIC", (14,)),)),
    "invoic_d97b_una_unoa3.edi": ("CONTRL", (), (("INVOIC", (14,)),)),
    # placeholders in UNB: processing priority 'p' (0029 a1, list A: 12), acknowledgement
    # request 'a' and test indicator 't' (n1: 37)
    "invoic_d97b_unoe_nondefault_separators.edi": ("CONTRL", (12, 37), ()),
    "orders_d01b_eancom_latin1_ok.edi": ("CONTRL", (), (("ORDERS", (14,)),)),
    # UNB 0029 'I' and 0031 '0' in no list (12); UNG S008 'D:96A:EAN008A:IGNORED' has four
    # components of three (16) and 0057 'EAN008A' is longer than an..6 (39)
    "orders_d96b_ean008_ung.edi": ("CONTRL", (12, 16, 39), ()),
    "ordrsp_d01b_unod_latin2.edi": ("CONTRL", (), (("ORDRSP", (14,)),)),
    "paores_iata_release_chars.edi": ("CONTRL", (), (("PAORES", (29,)),)),  # UNT+14 for 23 segments
    "paores_multi_messages.edi": ("CONTRL", (), (("PAORES", (14,)), ("PAORES", (14,)))),
    "paores_single_line.edi": ("CONTRL", (), (("PAORES", (14,)),)),
    # UNOA:4 with 6-digit UNB and UNG dates: syntax 4's S004 0017 is n8 (CCYYMMDD)
    "paxlst_d03b_us_ace_ung_v4.edi": ("CONTRL", (40,), ()),
    "pnrgov_iata_backslash_release.edi": ("CONTRL", (), (("PNRGOV", (14,)),)),
    # a group and loose messages mixed (30); references wrong (28); lower case under UNOA
    # (21); the 8-digit date 20051107 under syntax 3 (39); UNG without S004, 0051, S008 (13)
    "unedifact_ung_multi.edi": ("CONTRL", (13, 21, 28, 30, 39), ()),
}
