"""widgets.explore shows the static view once and calls the function again only when a control moves."""

import pytest

from course_lib.widgets import explore


def test_the_function_runs_once_for_the_static_view_and_again_on_each_change(capsys):
    calls = []
    widget = explore(lambda query, temperature: calls.append((query, temperature)),
                          static={"query": "kitten", "temperature": 0.1},
                          query=["cat", "kitten", "car"], temperature=(0.01, 1.0, 0.01))
    assert "Static view (query='kitten', temperature=0.1):" in capsys.readouterr().out
    assert calls == [("kitten", 0.1)]  # building the widget drew nothing more
    assert [c.value for c in widget.kwargs_widgets] == ["kitten", 0.1]
    widget.kwargs_widgets[0].value = "car"
    assert calls[-1] == ("car", 0.1)


def test_a_static_setting_without_a_control_is_refused():
    with pytest.raises(ValueError, match=r"static: settings \['speed'\] have no control"):
        explore(lambda query: None, static={"speed": 1}, query=["cat"])


def test_a_returned_value_is_shown_when_a_control_moves(capsys):
    widget = explore(lambda word: f"<{word}>", static={"word": "chat"}, word=["chat", "chien"])
    capsys.readouterr()
    widget.kwargs_widgets[0].value = "chien"
    assert "<chien>" in capsys.readouterr().out  # outside a kernel, display() prints it
