"""results.json as one typed, versioned record: what the trainer writes is what the split runner reads."""
import json

import pytest

from pyiqa.protocols.aggregate import read_results
from pyiqa.utils.errors import DataError
from pyiqa.utils.run_results import RESULTS_VERSION, RunResults


def test_round_trip_and_files_written_before_the_version_key(tmp_path):
    record = RunResults(name="r", iterations=330, seconds=36.6, best={"val": {"metric": "srcc", "value": 0.8,
                                                                              "iter": 55, "metrics": {"srcc": 0.8}}},
                        test={"test": {"srcc": 0.69}}, test_untrained={"test": {"srcc": 0.38}})
    path = tmp_path / "results.json"
    path.write_bytes(record.to_json())
    assert json.loads(path.read_text())["version"] == RESULTS_VERSION
    assert read_results(path) == record
    assert record.metrics("best", "val", "metrics") == {"srcc": 0.8} and record.metrics("test", "nope") is None
    old = {"name": "r", "iterations": 2, "seconds": 0.5, "feature_cache": False, "best": {}, "test": {},
           "test_best_network": {}}  # a results.json of the previous version
    path.write_text(json.dumps(old))
    assert read_results(path).version == 0 and read_results(path).test_untrained == {}


@pytest.mark.parametrize("change, message", [
    ({"version": 7}, r"'version' is 7; this pyiqa-uniqa reads results\.json versions 0 to 1"),
    ({"iterations": "ten"}, r"'iterations' must be an integer, got 'ten'"),
    ({"iterations": True}, r"'iterations' must be an integer, got True"),
    ({"test": [0.5]}, r"'test' must be an object, got \[0\.5\]"),
    ({"name": None}, r"'name' must be text, got None"),
])
def test_malformed_results_name_the_file_and_key(tmp_path, change, message):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"name": "r", "iterations": 2, "seconds": 0.5, **change}))
    with pytest.raises(DataError, match=message):
        read_results(path)
    path.write_text(json.dumps({"iterations": 2, "seconds": 0.5}))
    with pytest.raises(DataError, match=r"no 'name'; is it a results\.json written by pyiqa-train\?"):
        read_results(path)
