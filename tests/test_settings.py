"""Settings come from the environment, then ``.env``; bad values fail with the variable's name."""

import pytest

from bot.settings import PROJECT_ROOT, Settings, SettingsError


def test_defaults(tmp_path):
    settings = Settings.from_env({}, dotenv=tmp_path / "absent.env")
    assert settings.rasa_url == "http://127.0.0.1:5005"
    assert settings.model_dir == PROJECT_ROOT / "models"


def test_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nRASA_URL='http://10.0.0.1:5005'\nexport SCAM_THRESHOLD=0.5\n")
    settings = Settings.from_env({"RASA_URL": "http://127.0.0.1:6000"}, dotenv=dotenv)
    assert settings.rasa_url == "http://127.0.0.1:6000"
    assert settings.scam_threshold == 0.5


def test_relative_paths_are_under_the_project(tmp_path):
    settings = Settings.from_env({"MODEL_DIR": "elsewhere"}, dotenv=tmp_path / "x")
    assert settings.model_dir == PROJECT_ROOT / "elsewhere"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SCAM_THRESHOLD": "high"}, "SCAM_THRESHOLD"),
        ({"SCAM_THRESHOLD": "1.5"}, "SCAM_THRESHOLD"),
        ({"CLASSIFY_CONCURRENCY": "0"}, "CLASSIFY_CONCURRENCY"),
        ({"RASA_URL": "localhost:5005"}, "RASA_URL"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env, dotenv=tmp_path / "x")
