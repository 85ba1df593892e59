"""Panels several pages share: the faithfulness scores of the maps shown, a decoder's heads."""
