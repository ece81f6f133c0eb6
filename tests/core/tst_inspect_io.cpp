// `inspect` never touches tensor data: after evicting the shards from the page cache, building the
// inventory leaves every tensor-data page non-resident (mincore) and reads (rchar) at most the
// headers plus 1 MiB.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/fixtures/tiny_checkpoint.h"
#include "core/io/safetensors_reader.h"
#include "core/model/inventory.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {
std::uint64_t rchar() {
    std::ifstream f("/proc/self/io");
    std::string key;
    std::uint64_t v = 0;
    while (f >> key >> v)
        if (key == "rchar:") return v;
    return 0;
}

void evict(const fs::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY);
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
}

// Resident pages of [from, size) of the file, as the page cache reports them.
std::size_t residentPages(const fs::path& p, std::uint64_t from) {
    const int fd = ::open(p.c_str(), O_RDONLY);
    const auto size = std::uint64_t(::lseek(fd, 0, SEEK_END));
    const std::size_t page = std::size_t(::sysconf(_SC_PAGESIZE));
    void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    std::vector<unsigned char> vec((size + page - 1) / page);
    ::mincore(m, size, vec.data());
    std::size_t n = 0;
    for (std::size_t i = from / page; i < vec.size(); ++i) n += vec[i] & 1;
    ::munmap(m, size);
    return n;
}
}  // namespace

class TestInspectIo : public QObject {
    Q_OBJECT
private slots:
    void headersOnly() {
        QTemporaryDir dir;
        const fs::path d = tempPath(dir, "ck");
        TinyCheckpointOptions o;
        o.preset = "e4b-mini";
        o.shardLimitBytes = 2u << 20;
        NullProgress p;
        CancelToken c;
        makeTinyCheckpoint(d, o, p, c);
        std::vector<fs::path> shards;
        for (const auto& e : fs::directory_iterator(d))
            if (e.path().extension() == ".safetensors") shards.push_back(e.path());
        QVERIFY(shards.size() >= 2);
        const std::size_t page = std::size_t(::sysconf(_SC_PAGESIZE));
        std::uint64_t headerBytes = 0;
        std::vector<std::uint64_t> dataFrom;
        for (const auto& s : shards) {
            const std::uint64_t h = SafetensorsFile(s).headerBytes();
            headerBytes += h;
            dataFrom.push_back((h + page - 1) / page * page);  // first page holding only tensor data
            evict(s);
        }
        for (std::size_t i = 0; i < shards.size(); ++i) {
            const auto resident = residentPages(shards[i], dataFrom[i]);
            WHITTLE_REQUIRE_OR_SKIP(resident == 0, "page cache eviction does not work on this filesystem");
        }
        const std::uint64_t before = rchar();
        const Inventory inv = makeInventory(Checkpoint::open(d));
        const std::uint64_t read = rchar() - before;
        QVERIFY(inv.total.params > 0);
        for (std::size_t i = 0; i < shards.size(); ++i)
            QVERIFY2(residentPages(shards[i], dataFrom[i]) == 0, qPrintable(QString::fromStdString(shards[i].string())));
        QVERIFY2(read <= headerBytes + (1u << 20),
                 qPrintable(QString("read %1 bytes, headers are %2").arg(read).arg(headerBytes)));
        // And the reading is real: touching a view does make pages resident.
        const SafetensorsFile f(shards[0]);
        const TensorView v = f.view(f.tensors().back());
        volatile float sink = v.at(v.size() / 2 / 2);
        (void)sink;
        QVERIFY(residentPages(shards[0], dataFrom[0]) > 0);
    }
};

QTEST_APPLESS_MAIN(TestInspectIo)
#include "tst_inspect_io.moc"
