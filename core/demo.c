/* demo.c - deterministic made-up data: names, addresses, ID numbers,
 * phones, serials, the story of each customer and the demo catalog (demo.h). */
#include "demo.h"

#include <stdio.h>
#include <string.h>

#include "accounts.h"
#include "audit.h"
#include "catalog.h"
#include "customers.h"
#include "date.h"
#include "devices.h"
#include "rules.h"
#include "subs.h"
#include "vault.h"

/* ------------------------------------------------------------------ PRNG */

uint64_t demo_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void demo_rng_seed(demo_rng *r, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++) r->s[i] = demo_splitmix64(&st);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t demo_rng_next(demo_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t demo_rng_below(demo_rng *r, uint32_t n)
{
    /* Lemire's multiply-shift with rejection of the biased low range */
    uint64_t m = (uint64_t)(uint32_t)(demo_rng_next(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(demo_rng_next(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

int demo_rng_percent(demo_rng *r, unsigned percent) { return demo_rng_below(r, 100) < percent; }

/* Picks an index by integer weights. */
static size_t weighted(demo_rng *r, const unsigned *w, size_t n)
{
    unsigned total = 0;
    for (size_t i = 0; i < n; i++) total += w[i];
    uint32_t x = demo_rng_below(r, total);
    for (size_t i = 0; i < n; i++) {
        if (x < w[i]) return i;
        x -= w[i];
    }
    return n - 1;
}

/* The generator of one customer (or device): independent of every other
 * index, so any of them can be made alone and in any order. */
static void rng_for(demo_rng *r, uint64_t seed, uint64_t index, uint64_t stream)
{
    uint64_t st = seed ^ (index * 0xD1B54A32D192ED03ull) ^ (stream * 0x8CB92BA72F3D8DD7ull);
    demo_rng_seed(r, demo_splitmix64(&st));
}

/* ------------------------------------------------------------ permutation */

uint64_t demo_permute(uint64_t x, uint64_t n, uint64_t key)
{
    if (n <= 1) return 0;
    int bits = 2;
    while (bits < 62 && (1ull << bits) < n) bits += 2;
    int half = bits / 2;
    uint64_t mask = (1ull << half) - 1;
    /* cycle walking: a permutation of [0, 2^bits) restricted to [0, n)
     * by applying it again while the value is out of range - every value
     * below n is reached from exactly one below n */
    do {
        uint64_t l = x >> half, r = x & mask;
        for (uint64_t round = 0; round < 4; round++) {
            uint64_t st = (r + 1) ^ key ^ (round * 0xA0761D6478BD642Full);
            uint64_t f = demo_splitmix64(&st) & mask;
            uint64_t nl = r;
            r = l ^ f;
            l = nl;
        }
        x = (l << half) | r;
    } while (x >= n);
    return x;
}

/* --------------------------------------------------------- check digits */

char demo_id_card_check(const char *first17)
{
    static const int weight[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[11] = {'1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'};
    int sum = 0;
    for (int i = 0; i < 17; i++) sum += (first17[i] - '0') * weight[i];
    return check[sum % 11];
}

static const char USCC_CHARS[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

char demo_tax_id_check(const char *first17)
{
    static const int weight[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        const char *at = first17[i] ? strchr(USCC_CHARS, first17[i]) : NULL;
        if (!at) return 0;
        sum += (int)(at - USCC_CHARS) * weight[i];
    }
    return USCC_CHARS[(31 - sum % 31) % 31];
}

char demo_org_code_check(const char *first8)
{
    static const int weight[8] = {3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0;
    for (int i = 0; i < 8; i++) sum += (first8[i] - '0') * weight[i];
    int c = 11 - sum % 11;
    return c == 10 ? 'X' : c == 11 ? '0' : (char)('0' + c);
}

/* ------------------------------------------------------------- ID cards */

/* Region codes of Hangzhou that adults' ID numbers carry: the districts of
 * today and those merged in 2021 (上城 下城 江干 ...), and the county-level
 * cities before they became districts (富阳 330183, 临安 330185): an ID
 * number keeps the code it was given. */
static const char *const ID_REGIONS[] = {"330102", "330103", "330104", "330105", "330106", "330108", "330109",
                                         "330110", "330122", "330127", "330182", "330183", "330185"};
#define N_ID_REGIONS (sizeof ID_REGIONS / sizeof *ID_REGIONS)
#define BIRTH_FIRST_Y 1950
#define BIRTH_LAST_Y 2005

static const uint64_t KEY_ID = 0x1D6A5A2E8F0C4B37ull, KEY_PHONE = 0x7C1E93B2D4F60A85ull, KEY_ONU = 0x52E4C1A9B7D3F016ull,
                      KEY_ONU_MAC = 0x3B8F6D2A1C9E4075ull, KEY_STB = 0x6A0D9F3E8B2C7154ull,
                      KEY_STB_MAC = 0x49C2E7B51F8A3D60ull;

void demo_id_card(uint64_t seed, uint64_t index, char out[19])
{
    int32_t first = date_from_ymd(BIRTH_FIRST_Y, 1, 1), last = date_from_ymd(BIRTH_LAST_Y, 12, 31);
    uint64_t days = (uint64_t)(last - first + 1);
    /* every (region, birth date, sequence 001-999) once */
    uint64_t p = demo_permute(index, N_ID_REGIONS * days * 999, seed ^ KEY_ID);
    uint64_t region = p % N_ID_REGIONS, day = (p / N_ID_REGIONS) % days, seq = p / (N_ID_REGIONS * days) + 1;
    int y, m, d;
    date_to_ymd(first + (int32_t)day, &y, &m, &d);
    snprintf(out, 19, "%s%04d%02d%02d%03u", ID_REGIONS[region], y, m, d, (unsigned)seq);
    out[17] = demo_id_card_check(out);
    out[18] = '\0';
}

/* ---------------------------------------------------------------- mobiles */

/* Prefixes of China Mobile, China Unicom, China Telecom and China
 * Broadnet in use for personal numbers. */
static const char *const MOBILE_PREFIXES[] = {
    "134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158", "159", "172", "178",
    "182", "183", "184", "187", "188", "195", "197", "198", "130", "131", "132", "145", "155", "156", "166",
    "167", "171", "175", "176", "185", "186", "196", "133", "149", "153", "173", "177", "180", "181", "189",
    "190", "191", "193", "199", "192"};
#define N_MOBILE_PREFIXES (sizeof MOBILE_PREFIXES / sizeof *MOBILE_PREFIXES)

void demo_mobile(uint64_t seed, uint64_t index, char out[12])
{
    uint64_t p = demo_permute(index, N_MOBILE_PREFIXES * 100000000ull, seed ^ KEY_PHONE);
    snprintf(out, 12, "%s%08llu", MOBILE_PREFIXES[p / 100000000ull], (unsigned long long)(p % 100000000ull));
}

/* ---------------------------------------------------------------- devices */

static const struct {
    const char *code, *vendor, *model;
    uint8_t oui[3];
} ONU_KINDS[] = {
    {"ZTEG", "ZTE", "ZXHN F650", {0x34, 0x4b, 0x50}},
    {"HWTC", "Huawei", "HG8245Q2", {0x48, 0x46, 0xfb}},
};

/* Set-top boxes: their serial prefixes are not GPON vendor codes bandbill
 * knows, so the vendor is given; their MACs come from other OUIs than the
 * ONUs', so the two kinds never collide. */
static const struct {
    const char *prefix, *vendor, *model;
    uint8_t oui[3];
} STB_KINDS[] = {
    {"SKYW", "Skyworth", "E900V22C", {0x1c, 0xd1, 0xba}},
    {"ZXSTB", "ZTE", "ZXV10 B860AV2.1", {0xd4, 0x76, 0xea}},
};

static void mac_text(const uint8_t oui[3], uint64_t low24, char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", oui[0], oui[1], oui[2], (unsigned)(low24 >> 16) & 0xff,
             (unsigned)(low24 >> 8) & 0xff, (unsigned)low24 & 0xff);
}

void demo_onu(uint64_t seed, uint64_t index, char serial[13], char mac[18], const char **vendor, const char **model)
{
    /* the vendor from the index's own generator; serial and MAC digits
     * through permutations, unique whatever the vendor */
    demo_rng r;
    rng_for(&r, seed, index, 7);
    int k = demo_rng_percent(&r, 55) ? 0 : 1;
    uint64_t hex = demo_permute(index, 1ull << 32, seed ^ KEY_ONU);
    snprintf(serial, 13, "%s%08llX", ONU_KINDS[k].code, (unsigned long long)hex);
    mac_text(ONU_KINDS[k].oui, demo_permute(index, 1ull << 24, seed ^ KEY_ONU_MAC), mac);
    *vendor = ONU_KINDS[k].vendor;
    *model = ONU_KINDS[k].model;
}

void demo_stb(uint64_t seed, uint64_t index, char serial[17], char mac[18], const char **vendor, const char **model)
{
    demo_rng r;
    rng_for(&r, seed, index, 8);
    int k = demo_rng_percent(&r, 60) ? 0 : 1;
    uint64_t num = demo_permute(index, 100000000ull, seed ^ KEY_STB);
    snprintf(serial, 17, "%s%08llu", STB_KINDS[k].prefix, (unsigned long long)num);
    mac_text(STB_KINDS[k].oui, demo_permute(index, 1ull << 24, seed ^ KEY_STB_MAC), mac);
    *vendor = STB_KINDS[k].vendor;
    *model = STB_KINDS[k].model;
}

static const char *const ENGINEERS[] = {"周建平", "陈国强", "王立新", "李海涛", "徐卫东", "沈志刚", "金晓峰", "吴俊杰"};

const char *demo_engineer(uint64_t n) { return ENGINEERS[n % (sizeof ENGINEERS / sizeof *ENGINEERS)]; }

/* ------------------------------------------------------------------ names */

/* The most common surnames, weighted roughly by the 2020 census (per ten
 * thousand people), with a few frequent in Zhejiang moved up. */
static const char *const SURNAMES[] = {
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林",
    "高", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁",
    "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔",
    "钟", "谭", "陆", "汪", "范", "金", "俞", "楼", "方", "钱", "欧阳"};
static const unsigned SURNAME_W[] = {712, 700, 670, 540, 600, 310, 210, 200, 260, 250, 260, 150, 140, 130, 150, 120, 120,
                                     120, 120, 110, 110, 100, 90,  85,  85,  80,  80,  75,  74,  73,  70,  65,  63,  62,
                                     60,  57,  56,  55,  60,  53,  52,  50,  60,  47,  45,  44,  43,  42,  41,  90,  39,
                                     38,  37,  36,  35,  34,  60,  45,  31,  70,  50,  40,  55,  40,  8};

/* Given names by sex and the decade of birth: older Hangzhou people are
 * 建国 and 秀英, younger ones 子轩 and 欣怡. */
static const char *const MALE_OLD[] = {"建国", "国强", "建华", "志强", "德明", "国平", "建军", "文华", "振华", "永明",
                                       "国庆", "卫东", "建平", "海峰", "金宝", "根宝", "家明", "学军", "荣华", "光明",
                                       "伟", "军", "平", "明", "华"};
static const char *const MALE_MID[] = {"伟", "磊", "勇", "军", "杰", "涛", "斌", "强", "鹏", "超", "明", "刚", "波",
                                       "辉", "晓东", "海涛", "建伟", "志刚", "俊杰", "文斌", "立新", "春雷", "晓峰",
                                       "伟东", "振宇", "国栋", "海波", "晓明", "永刚", "文杰"};
static const char *const MALE_YOUNG[] = {"浩", "宇", "轩", "博", "凯", "帆", "鑫", "昊", "子轩", "浩然", "宇轩", "梓豪",
                                         "俊熙", "一鸣", "博文", "天佑", "泽宇", "晨阳", "思远", "嘉豪", "明轩", "皓轩",
                                         "宇航", "家乐", "俊宇", "睿泽", "奕辰", "子墨"};
static const char *const FEMALE_OLD[] = {"秀英", "桂英", "秀兰", "玉兰", "淑珍", "桂兰", "凤英", "美华", "丽华",
                                         "素芬", "月娥", "彩霞", "金凤", "雪梅", "爱华", "玉芳", "菊英", "美英",
                                         "英", "芬", "珍", "兰"};
static const char *const FEMALE_MID[] = {"芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲", "婷", "红",
                                         "晓燕", "丽娟", "海燕", "丽萍", "美玲", "春梅", "晓丽", "慧敏", "雪莲", "晓红",
                                         "丹丹", "静怡", "文静", "小燕", "佳慧"};
static const char *const FEMALE_YOUNG[] = {"欣", "怡", "雪", "琳", "颖", "婧", "欣怡", "梓涵", "诗涵", "雨萱", "一诺",
                                           "子怡", "思琪", "佳怡", "梦瑶", "雨欣", "可馨", "语嫣", "若曦", "诗琪",
                                           "嘉怡", "紫萱", "心怡", "佳琪", "晨曦"};

#define PICK(r, list) (list)[demo_rng_below((r), (uint32_t)(sizeof(list) / sizeof *(list)))]

static const char *given_name(demo_rng *r, int male, int year)
{
    if (male) return year < 1970 ? PICK(r, MALE_OLD) : year < 1990 ? PICK(r, MALE_MID) : PICK(r, MALE_YOUNG);
    return year < 1970 ? PICK(r, FEMALE_OLD) : year < 1990 ? PICK(r, FEMALE_MID) : PICK(r, FEMALE_YOUNG);
}

/* Business names: 杭州 + a brand + a trade + 有限公司. */
static const char *const BRANDS[] = {"云帆", "启明", "华信", "博远", "恒达", "鼎盛", "睿思", "新锐", "星辰", "正阳",
                                     "天合", "嘉禾", "同舟", "鸿运", "青竹", "西子", "钱潮", "之江", "湖畔", "明德",
                                     "瑞丰", "金桥", "润泽", "远航", "致远", "聚力", "晨光", "万象"};
static const char *const TRADES[] = {"网络科技", "信息技术", "电子商务", "文化传媒", "餐饮管理", "贸易", "建筑设计",
                                     "物业管理", "教育科技", "医疗器械", "广告", "供应链管理", "软件开发"};

/* ---------------------------------------------------------------- places */

typedef struct community {
    const char *name;
    int floors;        /* storeys of its buildings */
    int buildings;
} community;

typedef struct street {
    const char *name;
    community c[4];
} street;

typedef struct district {
    const char *name, *code;
    unsigned weight;
    unsigned nstreets;
    street s[4];
} district;

static const district DISTRICTS[] = {
    {"西湖区", "330106", 30, 4,
     {{"文新街道", {{"文鼎苑", 18, 24}, {"金色黄庭", 11, 16}, {"益乐新村", 6, 40}, {"骆家庄", 6, 30}}},
      {"翠苑街道", {{"翠苑一区", 6, 45}, {"翠苑二区", 6, 38}, {"嘉绿苑", 11, 28}, {"府苑新村", 7, 20}}},
      {"蒋村街道", {{"西溪诚园", 18, 22}, {"蒋村花园", 11, 35}, {"西溪北苑", 18, 26}, {"和家园", 15, 18}}},
      {"三墩镇", {{"紫桂花园", 11, 30}, {"华润西溪", 26, 20}, {"西城年华", 18, 24}, {"紫金庭园", 18, 16}}}}},
    {"拱墅区", "330105", 25, 4,
     {{"和睦街道", {{"和睦新村", 6, 42}, {"华丰新村", 6, 30}, {"建华新村", 6, 25}, {"登云路小区", 7, 18}}},
      {"大关街道", {{"大关苑", 6, 36}, {"西一苑", 6, 28}, {"东一苑", 6, 30}, {"南苑", 7, 22}}},
      {"拱宸桥街道", {{"运河宸园", 26, 12}, {"桥西新村", 6, 26}, {"信义坊", 11, 14}, {"丽水雅苑", 18, 16}}},
      {"祥符街道", {{"左岸花园", 18, 20}, {"古运新城", 11, 24}, {"蓝孔雀花园", 15, 18}, {"锦绣文苑", 18, 14}}}}},
    {"滨江区", "330108", 25, 3,
     {{"西兴街道", {{"江南豪园", 18, 20}, {"东方郡", 26, 14}, {"钱塘春晓", 24, 18}, {"星耀城", 33, 8}}},
      {"长河街道", {{"白金海岸", 18, 22}, {"江南春城", 11, 26}, {"金色海岸", 18, 18}, {"长河花园", 7, 24}}},
      {"浦沿街道", {{"东冠高层", 24, 16}, {"彩虹城", 18, 24}, {"浦沿新村", 6, 30}, {"冠山小区", 7, 20}}}}},
    {"余杭区", "330110", 20, 4,
     {{"五常街道", {{"西溪水岸花苑", 11, 30}, {"五常港湾家园", 18, 24}, {"西溪蝶园", 7, 28}, {"友谊社区", 6, 20}}},
      {"仓前街道", {{"仓溢东苑", 18, 20}, {"葛巷花苑", 11, 24}, {"梦想小镇公寓", 15, 10}, {"太炎苑", 18, 16}}},
      {"闲林街道", {{"闲林山水", 11, 26}, {"万科西庐", 18, 14}, {"和达城", 26, 12}, {"闲林花园", 7, 30}}},
      {"良渚街道", {{"良渚文化村", 11, 40}, {"金地自在城", 26, 22}, {"七贤郡", 18, 20}, {"玉鸟流苏", 6, 24}}}}},
};
#define N_DISTRICTS (sizeof DISTRICTS / sizeof *DISTRICTS)

/* ------------------------------------------------------------- customers */

void demo_customer_make(uint64_t seed, uint64_t index, demo_customer *c)
{
    memset(c, 0, sizeof *c);
    c->index = index;
    demo_rng r;
    rng_for(&r, seed, index, 1);
    demo_id_card(seed, index, c->id_card);
    demo_mobile(seed, index, c->phone);
    c->birth_year = (c->id_card[6] - '0') * 1000 + (c->id_card[7] - '0') * 100 + (c->id_card[8] - '0') * 10 +
                    (c->id_card[9] - '0');
    c->male = (c->id_card[16] - '0') % 2;
    size_t si = weighted(&r, SURNAME_W, sizeof SURNAME_W / sizeof *SURNAME_W);
    snprintf(c->name, sizeof c->name, "%s%s", SURNAMES[si], given_name(&r, c->male, c->birth_year));

    unsigned dw[N_DISTRICTS];
    for (size_t i = 0; i < N_DISTRICTS; i++) dw[i] = DISTRICTS[i].weight;
    const district *di = &DISTRICTS[weighted(&r, dw, N_DISTRICTS)];
    const street *st = &di->s[demo_rng_below(&r, di->nstreets)];
    const community *co = &st->c[demo_rng_below(&r, 4)];
    c->province = "浙江省";
    c->city = "杭州市";
    c->district = di->name;
    c->street = st->name;
    c->community = co->name;
    int floor = 1 + (int)demo_rng_below(&r, (uint32_t)co->floors);
    snprintf(c->building, sizeof c->building, "%u", 1 + demo_rng_below(&r, (uint32_t)co->buildings));
    snprintf(c->unit, sizeof c->unit, "%u", 1 + demo_rng_below(&r, co->floors > 7 ? 2 : 3));
    snprintf(c->floor, sizeof c->floor, "%d", floor);
    snprintf(c->room, sizeof c->room, "%d%02u", floor, 1 + demo_rng_below(&r, co->floors > 7 ? 4 : 2));

    c->business = demo_rng_percent(&r, 4);
    if (c->business) {
        snprintf(c->company, sizeof c->company, "杭州%s%s有限公司", PICK(&r, BRANDS), PICK(&r, TRADES));
        /* 9 (registered with market regulation) 1 (a company), the region,
         * an organisation code with its own check, the MOD 31 check */
        char t[19];
        snprintf(t, sizeof t, "91%s%08u", di->code, (unsigned)(demo_rng_next(&r) % 100000000u));
        t[16] = demo_org_code_check(t + 8);
        t[17] = '\0';
        t[17] = demo_tax_id_check(t);
        t[18] = '\0';
        memcpy(c->tax_id, t, sizeof t);
    }
    if (demo_rng_percent(&r, 15)) {
        /* a landline at home or at the office: Hangzhou numbers are 8 digits */
        static const char *const heads[] = {"8", "5", "2"};
        snprintf(c->phone2, sizeof c->phone2, "0571-%s%07u", PICK(&r, heads), demo_rng_below(&r, 10000000));
    }
    unsigned mail = demo_rng_below(&r, 100);
    if (mail < 25) snprintf(c->email, sizeof c->email, "%u@qq.com", 10000000u + demo_rng_below(&r, 2000000000u));
    else if (mail < 35) snprintf(c->email, sizeof c->email, "%s@163.com", c->phone);
    else if (mail < 40 && c->business) snprintf(c->email, sizeof c->email, "finance%u@example.com.cn", (unsigned)(index % 100000));
}

static int set_if(jv_arena *a, jv *o, const char *k, const char *v)
{
    return v && v[0] ? jv_obj_set_str(a, o, k, v) : 0;
}

int demo_customer_jv(const demo_customer *c, const char *status, const char *const *tags, size_t ntags, jv_arena *a,
                     jv **out, err *e)
{
    jv *o = jv_obj_sized(a, 12), *ad = jv_obj_sized(a, 9), *tl = jv_arr_sized(a, ntags);
    if (!o || !ad || !tl) return ERR_NOMEM_RET(e);
    int bad = jv_obj_set_str(a, o, "type", c->business ? "business" : "residential");
    bad |= jv_obj_set_str(a, o, "name", c->name);
    bad |= set_if(a, o, "company_name", c->business ? c->company : NULL);
    bad |= set_if(a, o, "tax_id", c->business ? c->tax_id : NULL);
    bad |= jv_obj_set_str(a, o, "id_card", c->id_card);
    bad |= jv_obj_set_str(a, o, "phone", c->phone);
    bad |= set_if(a, o, "phone2", c->phone2);
    bad |= set_if(a, o, "email", c->email);
    bad |= jv_obj_set_str(a, ad, "province", c->province);
    bad |= jv_obj_set_str(a, ad, "city", c->city);
    bad |= jv_obj_set_str(a, ad, "district", c->district);
    bad |= jv_obj_set_str(a, ad, "street", c->street);
    bad |= jv_obj_set_str(a, ad, "community", c->community);
    bad |= jv_obj_set_str(a, ad, "building", c->building);
    bad |= jv_obj_set_str(a, ad, "unit", c->unit);
    bad |= jv_obj_set_str(a, ad, "floor", c->floor);
    bad |= jv_obj_set_str(a, ad, "room", c->room);
    bad |= jv_obj_set(a, o, "address", ad);
    for (size_t i = 0; i < ntags; i++) bad |= jv_arr_push(a, tl, jv_str(a, tags[i]));
    if (ntags) bad |= jv_obj_set(a, o, "tags", tl);
    if (status) bad |= jv_obj_set_str(a, o, "status", status);
    if (bad) return ERR_NOMEM_RET(e);
    *out = o;
    return 0;
}

/* ---------------------------------------------------------------- stories */

const char *const demo_plan_codes[DEMO_PLANS] = {"FIBER100", "FIBER300", "FIBER500", "FIBER1000", "FIBER500Y"};

/* Which add-ons go with which plan (as the catalog's attrs.fits says). */
static int addon_fits(int addon, int plan)
{
    if (addon == DEMO_ADDON_IP) return plan == DEMO_PLAN_500 || plan == DEMO_PLAN_1000 || plan == DEMO_PLAN_500Y;
    if (addon == DEMO_ADDON_IPTV) return plan != DEMO_PLAN_100;
    if (addon == DEMO_ADDON_BOOST) return plan == DEMO_PLAN_100 || plan == DEMO_PLAN_300;
    return 0;
}

void demo_story_make(uint64_t seed, uint64_t index, int business, demo_story *s)
{
    memset(s, 0, sizeof *s);
    demo_rng r;
    rng_for(&r, seed, index, 2);
    static const unsigned status_w[] = {80, 5, 6, 4, 5};
    s->status = (demo_status)weighted(&r, status_w, 5);
    static const unsigned home_w[DEMO_PLANS] = {20, 35, 25, 10, 10}, office_w[DEMO_PLANS] = {0, 10, 40, 40, 10};
    s->plan = (int)weighted(&r, business ? office_w : home_w, DEMO_PLANS);
    /* an ISP that grows: more of the customers joined lately */
    s->start_days_ago = demo_rng_percent(&r, 60) ? (int)demo_rng_below(&r, 731) : (int)demo_rng_below(&r, 366);
    s->vip = demo_rng_percent(&r, 5);
    s->staff = !business && demo_rng_percent(&r, 1);
    if (addon_fits(DEMO_ADDON_IP, s->plan) && (business ? demo_rng_percent(&r, 60) : s->vip && demo_rng_percent(&r, 30)))
        s->addons |= DEMO_ADDON_IP;
    if (addon_fits(DEMO_ADDON_IPTV, s->plan) && !business && demo_rng_percent(&r, 25)) s->addons |= DEMO_ADDON_IPTV;
    if (addon_fits(DEMO_ADDON_BOOST, s->plan) && demo_rng_percent(&r, 10)) s->addons |= DEMO_ADDON_BOOST;
    s->own_onu = demo_rng_percent(&r, 10);

    switch (s->status) {
    case DEMO_PROSPECT:
        /* signed, the installation is booked: it starts in a few days */
        s->start_days_ago = -(3 + (int)demo_rng_below(&r, 18));
        break;
    case DEMO_OVERDUE:
        if (s->start_days_ago < 45) s->start_days_ago += 45;
        break;
    case DEMO_SUSPENDED:
        if (s->start_days_ago < 30) s->start_days_ago += 30;
        s->event_days_ago = 1 + (int)demo_rng_below(&r, (uint32_t)(s->start_days_ago - 10));
        break;
    case DEMO_CLOSED:
        if (s->start_days_ago < 60) s->start_days_ago += 60;
        s->event_days_ago = 1 + (int)demo_rng_below(&r, (uint32_t)(s->start_days_ago - 30));
        s->lost_onu = demo_rng_percent(&r, 20);
        break;
    case DEMO_ACTIVE:
        break;
    }
    int monthly = s->plan != DEMO_PLAN_500Y;
    /* events after the start happen before the suspension or closing, if any */
    int latest = s->event_days_ago + 1;
    if (s->status != DEMO_PROSPECT && monthly && s->plan != DEMO_PLAN_100 && s->start_days_ago - 30 >= latest &&
        demo_rng_percent(&r, 12))
        /* moved up from the plan below, a month or more after the start */
        s->upgraded_days_ago = latest + (int)demo_rng_below(&r, (uint32_t)(s->start_days_ago - 30 - latest + 1));
    if ((s->addons & DEMO_ADDON_IPTV) && s->status != DEMO_PROSPECT && s->start_days_ago - 20 >= latest &&
        demo_rng_percent(&r, 20))
        s->addon_later_days_ago = latest + (int)demo_rng_below(&r, (uint32_t)(s->start_days_ago - 20 - latest + 1));
    int fit_below = s->plan != DEMO_PLAN_100;
    for (int bit = 1; fit_below && bit <= DEMO_ADDON_BOOST; bit <<= 1)
        if ((s->addons & bit) && !addon_fits(bit, s->plan - 1)) fit_below = 0;
    if (s->status == DEMO_ACTIVE && monthly && fit_below && !s->upgraded_days_ago) s->downgrade_scheduled = demo_rng_percent(&r, 2);
    if (s->status == DEMO_ACTIVE || s->status == DEMO_OVERDUE) {
        s->repair_visit = demo_rng_percent(&r, 3);
        s->relocation = demo_rng_percent(&r, 1);
    }
}

/* ---------------------------------------------------------------- catalog */

/* "YYYY-MM-01" of the month holding today - days_back. */
static void month_start(const char *today, int days_back, char out[11])
{
    int32_t t = 0;
    date_parse(today, 10, &t, NULL);
    int y, m, d;
    date_to_ymd(t - days_back, &y, &m, &d);
    date_format(date_from_ymd(y, m, 1), out);
}

int demo_catalog_json(const char *today, jv_arena *a, jv **out, err *e)
{
    char d1[11], d2[11];
    int32_t t;
    if (!today || date_parse(today, strlen(today), &t, NULL)) return err_set(e, ERR_INTERNAL, "demo: no valid today");
    /* before the earliest subscription, installation and deposit */
    month_start(today, 800, d1);
    /* a price cut later on, so that the catalog has history */
    month_start(today, 300, d2);
#define V(price, tax, rule, params, attrs, more)                                                                   \
    "\"version\":{\"effective_from\":\"%s\",\"price\":" #price ",\"tax_category\":\"" tax "\",\"rule\":\"" rule \
    "\",\"params\":" params ",\"attrs\":" attrs more "}"
#define MONTHLY "{\"proration\":\"daily\",\"rounding\":\"half_up\"}"
#define HZ ",\"regions\":[\"浙江省/杭州市\"]"
    char text[8192];
    int n = snprintf(text, sizeof text,
        "["
        /* plans */
        "{\"product\":{\"code\":\"FIBER100\",\"kind\":\"plan\",\"name\":\"光宽带 100M 包月\"," V(
            7900, "internet", "tariffs.monthly", MONTHLY,
            "{\"download_mbps\":100,\"upload_mbps\":30,\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":12}",
            HZ) "}},"
        "{\"product\":{\"code\":\"FIBER300\",\"kind\":\"plan\",\"name\":\"光宽带 300M 包月\"," V(
            11900, "internet", "tariffs.monthly", MONTHLY,
            "{\"download_mbps\":300,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":12}",
            HZ) "},\"later\":[{\"effective_from\":\"%s\",\"price\":9900}]},"
        "{\"product\":{\"code\":\"FIBER500\",\"kind\":\"plan\",\"name\":\"光宽带 500M 包月\"," V(
            12900, "internet", "tariffs.monthly", MONTHLY,
            "{\"download_mbps\":500,\"upload_mbps\":60,\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":12}",
            HZ) "}},"
        "{\"product\":{\"code\":\"FIBER1000\",\"kind\":\"plan\",\"name\":\"千兆光宽带 1000M 包月\"," V(
            19900, "internet", "tariffs.monthly", MONTHLY,
            "{\"download_mbps\":1000,\"upload_mbps\":100,\"period\":\"month\",\"billing\":\"postpaid\","
            "\"min_contract_months\":12,\"early_termination_percent\":30}",
            HZ) "}},"
        "{\"product\":{\"code\":\"FIBER500Y\",\"kind\":\"plan\",\"name\":\"光宽带 500M 包年（预付）\"," V(
            118800, "internet", "tariffs.monthly", MONTHLY,
            "{\"download_mbps\":500,\"upload_mbps\":60,\"period\":\"year\",\"billing\":\"prepaid\",\"min_contract_months\":12}",
            HZ) "}},"
        /* add-ons */
        "{\"product\":{\"code\":\"STATICIP\",\"kind\":\"addon\",\"name\":\"公网固定 IP\"," V(
            3000, "internet", "tariffs.monthly", MONTHLY, "{\"fits\":[\"FIBER500\",\"FIBER1000\",\"FIBER500Y\"]}",
            HZ ",\"tags\":[\"business\",\"vip\"]") "}},"
        "{\"product\":{\"code\":\"IPTV\",\"kind\":\"addon\",\"name\":\"IPTV 高清电视\"," V(
            1500, "internet", "tariffs.monthly", MONTHLY, "{\"fits\":[\"FIBER300\",\"FIBER500\",\"FIBER1000\",\"FIBER500Y\"]}",
            HZ) "}},"
        "{\"product\":{\"code\":\"BOOST\",\"kind\":\"addon\",\"name\":\"提速包（下行 +100M）\"," V(
            2000, "internet", "tariffs.monthly", MONTHLY, "{\"fits\":[\"FIBER100\",\"FIBER300\"]}", HZ) "}},"
        /* one-time fees */
        "{\"product\":{\"code\":\"INSTALL\",\"kind\":\"fee\",\"name\":\"宽带安装调测费\"," V(
            10000, "installation", "tariffs.flat", "{}", "{\"purpose\":\"installation\"}", "") "}},"
        "{\"product\":{\"code\":\"RELOCATE\",\"kind\":\"fee\",\"name\":\"移机费\"," V(
            5000, "installation", "tariffs.flat", "{}", "{\"purpose\":\"relocation\"}", "") "}},"
        "{\"product\":{\"code\":\"REPAIR\",\"kind\":\"fee\",\"name\":\"上门维修费\"," V(
            3000, "installation", "tariffs.flat", "{}", "{\"purpose\":\"repair_visit\"}", "") "}},"
        /* deposits */
        "{\"product\":{\"code\":\"DEP-ONU\",\"kind\":\"deposit\",\"name\":\"光猫押金\"," V(
            20000, "deposit", "tariffs.flat", "{}", "{\"device\":\"onu\",\"refundable\":true}", "") "}},"
        "{\"product\":{\"code\":\"DEP-STB\",\"kind\":\"deposit\",\"name\":\"机顶盒押金\"," V(
            10000, "deposit", "tariffs.flat", "{}", "{\"device\":\"stb\",\"refundable\":true}", "") "}},"
        /* promotions */
        "{\"product\":{\"code\":\"FIRSTYEAR15\",\"kind\":\"promotion\",\"name\":\"新装首年 85 折\"," V(
            0, "internet", "promotions.first_year", "{\"percent\":15}",
            "{\"promo_type\":\"first_year\",\"applies_to\":\"plan\",\"products\":[\"FIBER300\",\"FIBER500\",\"FIBER1000\"]}",
            "") "}},"
        "{\"product\":{\"code\":\"LOYALTY10\",\"kind\":\"promotion\",\"name\":\"老用户 9 折\"," V(
            0, "internet", "promotions.percent_off", "{\"percent\":10}",
            "{\"promo_type\":\"loyalty\",\"applies_to\":\"plan\",\"min_tenure_months\":24}", "") "}},"
        "{\"product\":{\"code\":\"BUNDLE-IPTV\",\"kind\":\"promotion\",\"name\":\"宽带 + IPTV 融合立减 10 元\"," V(
            0, "internet", "promotions.fixed_off", "{\"amount\":1000}",
            "{\"promo_type\":\"bundle\",\"applies_to\":\"plan\",\"requires\":[\"IPTV\"]}", "") "}},"
        "{\"product\":{\"code\":\"COUPON-HZ50\",\"kind\":\"promotion\",\"name\":\"杭州新春券 立减 50 元\"," V(
            0, "internet", "promotions.fixed_off", "{\"amount\":5000}",
            "{\"promo_type\":\"coupon\",\"applies_to\":\"plan\",\"coupon\":\"HZ2026\"}", "") "}}"
        "]",
        d1, d1, d2, d1, d1, d1, d1, d1, d1, d1, d1, d1, d1, d1, d1, d1, d1, d1);
#undef V
#undef MONTHLY
#undef HZ
    if (n < 0 || (size_t)n >= sizeof text) return err_set(e, ERR_INTERNAL, "demo: the catalog does not fit");
    if (json_parse(text, (size_t)n, NULL, a, out, e)) return err_prefix(e, "demo catalog");
    return 0;
}

/* ------------------------------------------------------------- loading */

int demo_present(db *d, const vault *v, uint64_t seed, int *present, err *e)
{
    char phone[12], idx[VAULT_INDEX_HEX];
    demo_mobile(seed, 0, phone);
    vault_index(v, "phone", phone, idx);
    if (!idx[0]) return err_set(e, ERR_INTERNAL, "demo: the lookup hash of a phone could not be computed");
    int64_t one;
    int rc = db_get_int(d, e, &one, "SELECT 1 FROM customers WHERE phone_idx = ?", "s", idx);
    *present = rc == 0;
    return rc == ERR_NOTFOUND ? 0 : rc;
}

int demo_catalog_load(const demo_env *env, demo_counts *n, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *list = NULL;
    int rc = demo_catalog_json(env->today, &a, &list, e);
    for (size_t i = 0; !rc && i < jv_len(list); i++) {
        const jv *item = jv_at(list, i), *prod = jv_get(item, "product"), *later = jv_get(item, "later");
        const char *code = jv_get(prod, "code")->u.str.s;
        product p;
        err ne;
        /* a product of that code already there (made by hand, or by an
         * earlier demo of another version) is kept as it is */
        if (catalog_product(env->d, code, &p, &ne) == 0) continue;
        int64_t id = 0;
        /* drafts take past-dated versions; then they go on sale */
        rc = catalog_create(env->d, env->rs, prod, env->by, &id, e);
        for (size_t k = 0; !rc && k < jv_len(later); k++) rc = catalog_add_version(env->d, env->rs, id, jv_at(later, k), env->by, e);
        if (!rc) rc = catalog_set_status(env->d, id, "active", e);
        if (rc) err_prefix(e, "demo product %s", code);
        else n->products++;
    }
    jv_arena_free(&a);
    return rc;
}

/* The date `days_ago` days before today (negative: after). */
static void day_of(const demo_env *env, int days_ago, char out[11])
{
    int32_t t = 0;
    date_parse(env->today, 10, &t, NULL);
    date_format(t - days_ago, out);
}

static int audit_customer(const demo_env *env, const char *action, const char *code, const jv *before, const jv *after,
                          err *e)
{
    if (!env->audit_key) return 0;
    audit_event ev = {.action = action, .object_type = "customer", .object_id = code, .before = before, .after = after};
    return audit_append(env->d, env->audit_key, env->who, &ev, e);
}

static int set_status(const demo_env *env, int64_t cid, const char *code, const char *status, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *b = jv_obj(&a), *af = jv_obj(&a);
    int rc = customers_set_status(env->d, cid, status, e);
    if (!rc && (!b || !af || jv_obj_set_str(&a, b, "status", "active") || jv_obj_set_str(&a, af, "status", status)))
        rc = ERR_NOMEM_RET(e);
    if (!rc) rc = audit_customer(env, "customer.status", code, b, af, e);
    jv_arena_free(&a);
    return rc;
}

static int change(const demo_env *env, int64_t sid, const char *kind, const char *prod, const char *today,
                  demo_counts *n, err *e)
{
    subs_change_req req = {.kind = kind, .product = prod, .today = today, .by = env->by};
    subs_change_out out;
    rule_error re;
    int rc = subs_change(env->d, env->rs, sid, &req, &out, &re, e);
    if (!rc) n->changes++;
    if (!rc && out.charge_id) n->charges++;
    return rc;
}

static int charge(const demo_env *env, int64_t cid, int64_t sid, const char *prod, const char *source, demo_counts *n,
                  err *e)
{
    subs_charge_new in = {.customer_id = cid,
                          .subscription_id = sid,
                          .product = prod,
                          .quantity = 1,
                          .source = source,
                          .today = env->today,
                          .by = env->by};
    int64_t id;
    int rc = subs_charge_create(env->d, env->rs, &in, &id, e);
    if (!rc) n->charges++;
    return rc;
}

/* Registers a device, installs it at the customer on `on` and takes its
 * deposit (when deposit_product is given). */
static int place_device(const demo_env *env, const char *kind, const char *serial, const char *mac, const char *model,
                        const char *vendor, int64_t cid, int64_t account_id, const char *on, const char *deposit_product,
                        uint64_t index, int64_t *device_id, int64_t *deposit_id, demo_counts *n, err *e)
{
    *deposit_id = 0;
    int rc = devices_create(env->d, kind, serial, mac, model, vendor, device_id, e);
    if (rc) return err_prefix(e, "device %s", serial);
    n->devices++;
    install_req ir = {.customer_id = cid, .account_id = account_id, .installed_on = on, .engineer = demo_engineer(index)};
    int64_t inst;
    if ((rc = devices_install(env->d, *device_id, &ir, &inst, e))) return err_prefix(e, "installing %s", serial);
    n->installations++;
    if (!deposit_product) return 0;
    if ((rc = deposits_take(env->d, cid, *device_id, deposit_product, -1, on, NULL, deposit_id, e)))
        return err_prefix(e, "deposit for %s", serial);
    n->deposits++;
    return 0;
}

static int load_one(const demo_env *env, uint64_t index, jv_arena *a, demo_counts *n, err *e)
{
    demo_customer c;
    demo_story s;
    demo_customer_make(env->seed, index, &c);
    demo_story_make(env->seed, index, c.business, &s);
    char start[11], today_s[11];
    day_of(env, s.start_days_ago, start);
    snprintf(today_s, sizeof today_s, "%s", env->today);

    const char *tags[4];
    size_t ntags = 0;
    if (c.business) tags[ntags++] = "business";
    if (s.vip) tags[ntags++] = "vip";
    if (s.staff) tags[ntags++] = "staff";
    if (s.start_days_ago <= 90) tags[ntags++] = "new_user";
    jv *in;
    int rc = demo_customer_jv(&c, s.status == DEMO_PROSPECT ? "prospect" : "active", tags, ntags, a, &in, e);
    int64_t cid = 0;
    if (!rc && (rc = customers_create(env->d, env->v, env->code_prefix, in, env->by, &cid, e))) err_prefix(e, "customer %s", c.name);
    if (rc) return rc;
    n->customers++;
    n->by_status[s.status]++;
    char code[CUSTOMER_CODE_MAX];
    jv *after = NULL;
    if ((rc = customers_code_by_id(env->d, cid, code, e))) return rc;
    if (env->audit_key && (rc = customers_get(env->d, env->v, cid, a, &after, e))) return rc;
    if ((rc = audit_customer(env, "customer.create", code, NULL, after, e))) return rc;

    /* the PPPoE account: its name from the rule, a fresh password */
    char user[ACCOUNT_USERNAME_BUF], pw[ACCOUNT_PASSWORD_BUF];
    rule_error re;
    int64_t acc = 0;
    if ((rc = accounts_username_from_rule(env->d, env->rs, cid, a, user, &re, e)) || (rc = accounts_password_generate(pw, e)) ||
        (rc = accounts_create(env->d, env->v, cid, user, pw, &acc, e)))
        return err_prefix(e, "customer %s: PPPoE account", code);
    explicit_bzero(pw, sizeof pw);
    n->accounts++;

    /* the plan it started on (one below, when it moved up later) and the
     * add-ons that fitted then */
    int plan0 = s.upgraded_days_ago ? s.plan - 1 : s.plan;
    int up_iptv = s.addon_later_days_ago;
    if ((s.addons & DEMO_ADDON_IPTV) && plan0 == DEMO_PLAN_100 && (!up_iptv || up_iptv > s.upgraded_days_ago))
        up_iptv = s.upgraded_days_ago; /* IPTV needs 300M: it came with the upgrade */
    static const struct {
        int bit;
        const char *code;
    } ADDONS[] = {{DEMO_ADDON_IP, "STATICIP"}, {DEMO_ADDON_IPTV, "IPTV"}, {DEMO_ADDON_BOOST, "BOOST"}};
    const char *initial[3], *with_upgrade[3];
    size_t ninit = 0, nup = 0;
    for (size_t k = 0; k < 3; k++) {
        if (!(s.addons & ADDONS[k].bit)) continue;
        if (ADDONS[k].bit == DEMO_ADDON_IPTV && up_iptv) continue;
        if (!s.upgraded_days_ago || addon_fits(ADDONS[k].bit, plan0)) initial[ninit++] = ADDONS[k].code;
        else with_upgrade[nup++] = ADDONS[k].code;
    }

    /* the ONU, installed on the first day of service, with its deposit
     * unless the customer brought one; prospects get theirs at the start */
    int64_t onu = 0, onu_dep = 0, stb = 0, stb_dep = 0;
    if (s.status != DEMO_PROSPECT) {
        char serial[17], mac[18];
        const char *vendor, *model;
        demo_onu(env->seed, index, serial, mac, &vendor, &model);
        if ((rc = place_device(env, "onu", serial, mac, model, vendor, cid, acc, start, s.own_onu ? NULL : "DEP-ONU", index,
                               &onu, &onu_dep, n, e)))
            return err_prefix(e, "customer %s", code);
    }

    subs_new sn = {.customer_id = cid,
                   .plan = demo_plan_codes[plan0],
                   .start_date = start,
                   .addons = initial,
                   .naddons = ninit,
                   .account = user,
                   .today = today_s,
                   .by = env->by};
    int64_t sid = 0;
    if ((rc = subs_create(env->d, env->rs, &sn, &sid, &re, e))) return err_prefix(e, "customer %s: subscription", code);
    n->subscriptions++;
    n->changes++;
    if (s.start_days_ago <= 30 && (rc = charge(env, cid, sid, "INSTALL", "install", n, e)))
        return err_prefix(e, "customer %s: installation fee", code);

    /* what happened since, oldest first */
    char when[11];
    if (s.upgraded_days_ago && (!up_iptv || s.upgraded_days_ago >= up_iptv)) {
        day_of(env, s.upgraded_days_ago, when);
        if ((rc = change(env, sid, "upgrade", demo_plan_codes[s.plan], when, n, e))) return err_prefix(e, "customer %s: upgrade", code);
        for (size_t k = 0; k < nup; k++)
            if ((rc = change(env, sid, "addon_add", with_upgrade[k], when, n, e))) return err_prefix(e, "customer %s: add-on", code);
    }
    if (up_iptv && s.status != DEMO_PROSPECT) {
        day_of(env, up_iptv, when);
        if ((rc = change(env, sid, "addon_add", "IPTV", when, n, e))) return err_prefix(e, "customer %s: IPTV", code);
    }
    if (s.upgraded_days_ago && up_iptv && s.upgraded_days_ago < up_iptv) {
        day_of(env, s.upgraded_days_ago, when);
        if ((rc = change(env, sid, "upgrade", demo_plan_codes[s.plan], when, n, e))) return err_prefix(e, "customer %s: upgrade", code);
        for (size_t k = 0; k < nup; k++)
            if ((rc = change(env, sid, "addon_add", with_upgrade[k], when, n, e))) return err_prefix(e, "customer %s: add-on", code);
    }
    if ((s.addons & DEMO_ADDON_IPTV) && s.status != DEMO_PROSPECT) {
        /* the set-top box came with IPTV */
        char serial[17], mac[18];
        const char *vendor, *model;
        demo_stb(env->seed, index, serial, mac, &vendor, &model);
        day_of(env, up_iptv ? up_iptv : s.start_days_ago, when);
        if ((rc = place_device(env, "stb", serial, mac, model, vendor, cid, 0, when, "DEP-STB", index, &stb, &stb_dep, n, e)))
            return err_prefix(e, "customer %s", code);
    }
    if (s.repair_visit && (rc = charge(env, cid, sid, "REPAIR", "ticket", n, e))) return err_prefix(e, "customer %s: repair", code);
    if (s.relocation && (rc = charge(env, cid, sid, "RELOCATE", "manual", n, e))) return err_prefix(e, "customer %s: relocation", code);

    day_of(env, s.event_days_ago, when);
    switch (s.status) {
    case DEMO_OVERDUE:
        rc = set_status(env, cid, code, "overdue", e);
        break;
    case DEMO_SUSPENDED:
        if (!(rc = change(env, sid, "suspend", NULL, when, n, e))) rc = set_status(env, cid, code, "suspended", e);
        break;
    case DEMO_CLOSED:
        /* service stops, the contract ends (with its fee when early), the
         * equipment comes back - or not - and the deposits are settled */
        if (!(rc = change(env, sid, "suspend", NULL, when, n, e))) rc = change(env, sid, "terminate", NULL, when, n, e);
        if (!rc && onu) rc = devices_remove(env->d, onu, s.lost_onu ? "lost" : "returned", when, e);
        if (!rc && onu_dep) rc = deposits_settle(env->d, onu_dep, s.lost_onu ? "forfeited" : "returned", when, env->by, NULL, e);
        if (!rc && stb) rc = devices_remove(env->d, stb, "returned", when, e);
        if (!rc && stb_dep) rc = deposits_settle(env->d, stb_dep, "returned", when, env->by, NULL, e);
        if (!rc) rc = set_status(env, cid, code, "closed", e);
        break;
    default:
        break;
    }
    if (rc) return err_prefix(e, "customer %s: status", code);
    if (s.downgrade_scheduled && (rc = change(env, sid, "downgrade", demo_plan_codes[s.plan - 1], env->today, n, e)))
        return err_prefix(e, "customer %s: downgrade", code);
    return 0;
}

int demo_customer_load(const demo_env *env, uint64_t index, demo_counts *n, err *e)
{
    if (index >= DEMO_STOCK_BASE) return err_set(e, ERR_INTERNAL, "demo: customer index %llu is out of range", (unsigned long long)index);
    jv_arena a;
    jv_arena_init(&a, 0);
    int rc = load_one(env, index, &a, n, e);
    jv_arena_free(&a);
    return rc;
}

int demo_stock_load(const demo_env *env, uint64_t k, demo_counts *n, err *e)
{
    char serial[17], mac[18];
    const char *vendor, *model, *kind = k % 4 == 3 ? "stb" : "onu";
    if (k % 4 == 3) demo_stb(env->seed, DEMO_STOCK_BASE + k, serial, mac, &vendor, &model);
    else demo_onu(env->seed, DEMO_STOCK_BASE + k, serial, mac, &vendor, &model);
    int64_t id;
    int rc = devices_create(env->d, kind, serial, mac, model, vendor, &id, e);
    if (rc) return err_prefix(e, "stock device %s", serial);
    n->devices++;
    n->stock++;
    return 0;
}

int demo_billing_position(const demo_env *env, int64_t *moved, err *e)
{
    *moved = 0;
    int32_t t = 0;
    if (date_parse(env->today, 10, &t, NULL)) return err_set(e, ERR_INTERNAL, "demo: today '%s' is not a date", env->today);
    int y = 0, m = 0;
    if (sscanf(env->today, "%4d-%2d", &y, &m) != 2) return err_set(e, ERR_INTERNAL, "demo: today '%s' is not a date", env->today);
    int32_t this_first = date_from_ymd(y, m, 1), last_first = m == 1 ? date_from_ymd(y - 1, 12, 1) : date_from_ymd(y, m - 1, 1);
    char first[11], billed[11];
    date_format(this_first, first);
    date_format(last_first - 1, billed);
    /* a subscription that ended before then is billed to its end */
    int rc = db_run(env->d, e,
                    "UPDATE subscriptions SET billed_through = min(?, coalesce(end_date, ?)), next_bill_date = ? "
                    "WHERE billing = 'postpaid' AND period = 'month' AND billed_through IS NULL AND next_bill_date < ? "
                    "AND start_date <= ?",
                    "sssss", billed, billed, first, first, billed);
    if (!rc) *moved = db_changes(env->d);
    return rc;
}
