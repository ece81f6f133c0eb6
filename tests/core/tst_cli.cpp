// whittle-cli end to end: make-tiny, inspect (text and JSON), help, errors and exit codes.
#include <nlohmann/json.hpp>

#include "core/io/json_file.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;

class TestCli : public QObject {
    Q_OBJECT
private slots:
    void makeTinyThenInspect() {
        QTemporaryDir dir;
        const QString d = dir.path() + "/m";
        CliResult r = runCli({"make-tiny", d, "--preset", "e4b-mini", "--seed", "3"});
        QCOMPARE(r.exitCode, 0);
        QVERIFY(r.out.contains("wrote"));
        r = runCli({"inspect", d});
        QCOMPARE(r.exitCode, 0);
        QVERIFY(r.out.contains("Layers       9 (6 sliding, 3 full; 6 own KV, 3 share KV)"));
        QVERIFY(r.out.contains("PLE table"));
        QVERIFY(r.out.contains("from 4"));  // shared sliding layers read layer 4 in e4b-mini
        r = runCli({"inspect", d, "--json"});
        QCOMPARE(r.exitCode, 0);
        const Json j = Json::parse(r.out.toStdString());
        QCOMPARE(j["config"]["num_layers"].get<int>(), 9);
        QCOMPARE(j["config"]["vocab_size"].get<int>(), 6144);
        QCOMPARE(j["parts"]["main_embedding"]["params"].get<std::uint64_t>(), std::uint64_t(6144 * 96));
        std::uint64_t sum = 0;
        for (const auto& t : j["tensors"]) sum += t["bytes"].get<std::uint64_t>();
        QCOMPARE(sum, j["total"]["bytes"].get<std::uint64_t>());
    }

    void refusesToOverwrite() {
        QTemporaryDir dir;
        const QString d = dir.path() + "/m";
        QCOMPARE(runCli({"make-tiny", d}).exitCode, 0);
        const CliResult again = runCli({"make-tiny", d});
        QCOMPARE(again.exitCode, 2);
        QVERIFY(again.err.contains("already exists"));
        QCOMPARE(runCli({"make-tiny", d, "--force", "--preset", "e4b-mini"}).exitCode, 0);
        QVERIFY(runCli({"inspect", d}).out.contains("Layers       9"));
    }

    void usageErrors() {
        QCOMPARE(runCli({}).exitCode, 2);
        CliResult r = runCli({"--help"});
        QCOMPARE(r.exitCode, 0);
        QVERIFY(r.out.contains("inspect") && r.out.contains("make-tiny"));
        r = runCli({"frobnicate"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY(r.err.contains("unknown command 'frobnicate'"));
        QTemporaryDir dir;
        r = runCli({"make-tiny", dir.path() + "/x", "--preset", "e9b"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY(r.err.contains("unknown preset 'e9b'"));
        r = runCli({"make-tiny", dir.path() + "/x", "--seed", "-4"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY(r.err.contains("non-negative integer"));
        QVERIFY(!QFileInfo::exists(dir.path() + "/x"));
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
