#!/usr/bin/env python3
"""Writes runtime/src/keep_corpus.txt, the built-in calibration corpus of the
keep-list rule (runtime/src/keep.rs): its token counts rank the normal tokens
of a pruned vocabulary.

Everything here was written for this project (no text copied from anywhere):
hand-written paragraphs of English prose, Rust, Python and C code and short
texts in other languages, plus deterministic expansions of hand-written
templates (facts, numbers, dates, code). Deterministic: the same file every
run (a fixed-seed generator, no clock). Re-running it changes the keep list
of every pruned model, so the output is committed and only regenerated on
purpose.

    python3 scripts/make-keep-corpus.py > runtime/src/keep_corpus.txt
"""
import random

R = random.Random(20240613)
out = []


def emit(s):
    out.append(s.strip("\n") + "\n\n")


PROSE = [
    """The morning train left the station a few minutes late, as it often did in winter. Most of the passengers were reading, some were asleep, and a small child by the window counted the cows in the fields. Outside, the frost had turned every fence post white. When the conductor came through the carriage, he apologised for the delay and promised that they would still arrive before ten o'clock.""",
    """Water boils at one hundred degrees Celsius at sea level, but at a lower temperature in the mountains, where the air pressure is lower. This is why cooking pasta at high altitude takes longer: the water is not as hot, even though it is boiling. Pressure cookers solve the problem by raising the pressure, and with it the boiling point.""",
    """A good recipe for bread needs only four ingredients: flour, water, salt and yeast. Mix them, let the dough rest for an hour, fold it a few times, and leave it overnight in a cool place. In the morning, shape the loaf, let it rise again, and bake it in a very hot oven for about forty minutes. The crust should be dark and the loaf should sound hollow when you tap it.""",
    """The history of writing begins with simple marks on clay tablets, used to count sheep, grain and jars of oil. Over centuries, the marks became symbols for words and then for sounds. The alphabet, with a small number of letters for the sounds of a language, made reading and writing much easier to learn, and it spread from one culture to the next along trade routes.""",
    """Europe has many old capitals. Rome, the capital of Italy, was founded, according to legend, in 753 BC. Paris, the capital of France, grew on an island in the Seine. Berlin is the capital of Germany, Madrid the capital of Spain, Lisbon the capital of Portugal, Vienna the capital of Austria, and Athens the capital of Greece. London, on the Thames, is the capital of the United Kingdom.""",
    """When you write software, the hardest part is often not the code itself but deciding what the program should do. A clear specification saves weeks of work. Tests help too: a test that fails tells you exactly which assumption was wrong. Small functions with good names are easier to read, easier to test, and easier to change later.""",
    """The weather forecast for tomorrow: cloudy in the morning with a chance of light rain, clearing in the afternoon. Temperatures between 12 and 18 degrees. Wind from the west at 20 kilometres per hour, stronger near the coast. On Saturday and Sunday it will be sunny and warmer, with highs of around 24 degrees.""",
    """Dear Anna, thank you for your letter and for the photographs from your trip. The mountains look beautiful, and I am glad the weather was kind to you. We are all well here. The garden is full of tomatoes this year, far more than we can eat, so I have been making sauce every weekend. Please come and visit us in September if you can. With love, Maria.""",
    """The human heart beats about one hundred thousand times a day. It pumps blood through the lungs, where it takes up oxygen, and then through the rest of the body. Regular exercise makes the heart stronger, so that it can pump more blood with each beat. Doctors recommend at least thirty minutes of activity on most days of the week.""",
    """In mathematics, a prime number is a whole number greater than one that has no divisors other than one and itself. The first primes are 2, 3, 5, 7, 11, 13, 17, 19, 23 and 29. There are infinitely many primes: if there were only finitely many, their product plus one would have a prime factor that is not on the list.""",
    """The meeting is scheduled for Tuesday at 3 pm in the small conference room on the second floor. Please read the attached report before the meeting and bring your questions. We will discuss the budget for next year, the hiring plan, and the timeline for the new product. If you cannot attend, send your comments by email by Monday evening.""",
    """Question: What is the largest planet in the solar system? Answer: Jupiter. It is more than eleven times wider than the Earth and has at least ninety-five known moons. The four largest, Io, Europa, Ganymede and Callisto, were discovered by Galileo in 1610. Saturn, the second largest planet, is famous for its rings.""",
    """Learning a new language takes time and patience. Listening every day, even for ten minutes, helps more than studying for hours once a week. Do not be afraid of making mistakes: people will understand you, and they will usually be happy that you are trying. Read simple books, watch films with subtitles, and speak whenever you have the chance.""",
    """The river rises in the hills, runs through forests and farmland, and reaches the sea after almost three hundred kilometres. For centuries it was the main road of the region: boats carried wood, stone, wine and wheat down to the port. Today most goods travel by road and rail, but in summer the river is busy with tourists in small boats.""",
    """Computers store numbers in binary, using only the digits zero and one. Eight bits make a byte, which can hold a value from 0 to 255. Text is stored as a sequence of bytes too: in UTF-8, the letters of the English alphabet take one byte each, while letters of other scripts take two, three or four bytes.""",
    """The library opens at nine in the morning and closes at eight in the evening, except on Sundays, when it is closed. Members can borrow up to ten books at a time for three weeks. Books can be renewed online unless another member has reserved them. The reading room on the top floor is quiet and has a view of the park.""",
    """She opened the door slowly and looked into the dark room. Nothing moved. The old clock on the wall had stopped at a quarter past four, and a thin layer of dust covered the table. On the table lay a single envelope with her name on it, written in a hand she had not seen for many years.""",
    """Climate change is caused mainly by the burning of coal, oil and gas, which releases carbon dioxide into the atmosphere. The gas traps heat, and the average temperature of the Earth rises. The effects include higher sea levels, more frequent heat waves, and changes in rainfall. Reducing emissions and adapting to the changes are both necessary.""",
    """To install the program, download the archive, unpack it, and run the installer. On Linux, you can also build it from source: clone the repository, change into the directory, and run the build command. The first build downloads the dependencies and takes a few minutes; later builds are much faster. Run the tests to check that everything works.""",
    """The football match ended in a draw, two goals each. The home team scored first after ten minutes, but the visitors equalised just before half time. In the second half both teams had chances, and the goalkeepers were the best players on the field. The crowd of thirty thousand went home disappointed but entertained.""",
]

CODE = [
    '''fn main() {
    let words = ["apple", "banana", "cherry"];
    for (i, w) in words.iter().enumerate() {
        println!("{}: {}", i, w);
    }
    let total: usize = words.iter().map(|w| w.len()).sum();
    println!("total length = {total}");
}''',
    '''use std::collections::HashMap;

/// Counts how often each word occurs in `text`.
pub fn word_counts(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words() {
        let c = word_counts("a b a");
        assert_eq!(c["a"], 2);
        assert_eq!(c.get("c"), None);
    }
}''',
    '''#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }

    pub fn distance(&self, other: &Point) -> f64 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
    }
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({:.2}, {:.2})", self.x, self.y)
    }
}''',
    '''use std::fs::File;
use std::io::{self, BufRead, BufReader};

fn read_lines(path: &str) -> io::Result<Vec<String>> {
    let file = File::open(path)?;
    let reader = BufReader::new(file);
    let mut lines = Vec::new();
    for line in reader.lines() {
        let line = line?;
        if !line.trim().is_empty() {
            lines.push(line);
        }
    }
    Ok(lines)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lines = read_lines("input.txt")?;
    println!("{} non-empty lines", lines.len());
    Ok(())
}''',
    '''import json
import sys
from pathlib import Path


def load_config(path):
    """Reads a JSON configuration file and returns a dict."""
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def main(argv):
    if len(argv) < 2:
        print("usage: tool.py CONFIG", file=sys.stderr)
        return 1
    config = load_config(Path(argv[1]))
    for key, value in sorted(config.items()):
        print(f"{key} = {value!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))''',
    '''class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from an empty stack")
        return self.items.pop()

    def __len__(self):
        return len(self.items)

    def __repr__(self):
        return f"Stack({self.items})"


def fibonacci(n):
    a, b = 0, 1
    result = []
    for _ in range(n):
        result.append(a)
        a, b = b, a + b
    return result


print(fibonacci(10))''',
    '''import numpy as np


def normalize(x, eps=1e-6):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


data = np.random.default_rng(0).standard_normal((4, 8))
print(softmax(normalize(data)).sum(axis=-1))''',
    '''#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buffer_t;

static int buffer_push(buffer_t *b, char c) {
    if (b->len == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        char *p = realloc(b->data, cap);
        if (p == NULL) {
            return -1;
        }
        b->data = p;
        b->cap = cap;
    }
    b->data[b->len++] = c;
    return 0;
}

int main(int argc, char **argv) {
    buffer_t b = {0};
    for (int i = 1; i < argc; i++) {
        for (const char *s = argv[i]; *s; s++) {
            if (buffer_push(&b, *s) != 0) {
                fprintf(stderr, "out of memory\\n");
                return 1;
            }
        }
    }
    printf("%zu bytes\\n", b.len);
    free(b.data);
    return 0;
}''',
    '''/* Returns the index of `key` in the sorted array `a` of `n` elements, or -1. */
int binary_search(const int *a, int n, int key) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (a[mid] == key) {
            return mid;
        } else if (a[mid] < key) {
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return -1;
}

void swap(int *x, int *y) {
    int t = *x;
    *x = *y;
    *y = t;
}''',
    '''<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Example page</title>
  <link rel="stylesheet" href="style.css">
</head>
<body>
  <h1>Hello, world</h1>
  <p>This is a <a href="/about">small page</a> with a list:</p>
  <ul>
    <li>first item</li>
    <li>second item</li>
  </ul>
  <script src="app.js"></script>
</body>
</html>''',
    '''const items = [3, 1, 4, 1, 5, 9, 2, 6];
const sorted = [...items].sort((a, b) => a - b);
console.log(`min=${sorted[0]} max=${sorted[sorted.length - 1]}`);

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`HTTP ${response.status}`);
  }
  return response.json();
}''',
    '''SELECT name, COUNT(*) AS orders, SUM(total) AS revenue
FROM customers c
JOIN orders o ON o.customer_id = c.id
WHERE o.created_at >= '2023-01-01'
GROUP BY name
ORDER BY revenue DESC
LIMIT 10;''',
    '''#!/bin/sh
set -eu
for f in *.txt; do
    echo "processing $f"
    wc -l "$f"
done
git add -A && git commit -m "update files"''',
]

MULTI = [
    # German
    """Am Wochenende sind wir mit dem Fahrrad an den See gefahren. Das Wetter war schön, aber das Wasser war noch sehr kalt. Nach dem Schwimmen haben wir im Gasthaus zu Mittag gegessen: Kartoffelsalat, Würstchen und zum Nachtisch Apfelkuchen. Die Hauptstadt von Deutschland ist Berlin.""",
    # French
    """Le matin, je prends un café et un croissant avant de partir au travail. Le bureau est à vingt minutes à pied, et quand il fait beau, c'est une promenade agréable le long de la rivière. Paris est la capitale de la France, et Rome est la capitale de l'Italie.""",
    # Spanish
    """Mi familia vive en un pueblo pequeño cerca de la costa. En verano vamos a la playa casi todos los días, y por la noche cenamos tarde, como es costumbre en España. Madrid es la capital del país y tiene museos muy famosos.""",
    # Italian
    """Roma è la capitale d'Italia ed è una città piena di storia. Ogni anno milioni di turisti visitano il Colosseo, i Fori Imperiali e la Fontana di Trevi. La cucina italiana è famosa in tutto il mondo: pasta, pizza, gelato e un buon caffè dopo pranzo.""",
    # Portuguese
    """Lisboa é a capital de Portugal. A cidade tem sete colinas, elétricos amarelos e muitos miradouros com vista para o rio Tejo. Os pastéis de nata são o doce mais conhecido, e é difícil comer só um.""",
    # Dutch
    """In Nederland fietsen veel mensen elke dag naar hun werk of school. Het land is vlak, en er zijn overal fietspaden. Amsterdam is de hoofdstad, maar de regering zit in Den Haag.""",
    # Russian
    """Москва — столица России. Зимой здесь холодно и много снега, а летом бывает жарко. Я люблю гулять по парку и читать книги. Сегодня хорошая погода, и мы пойдём в музей.""",
    # Chinese
    """北京是中国的首都，有很长的历史。我每天早上六点起床，先喝一杯茶，然后去公司上班。周末我喜欢和朋友一起吃饭、看电影。学习编程需要耐心和练习，写代码的时候要注意测试。今天天气很好，我们去公园散步吧。""",
    # Japanese
    """東京は日本の首都です。朝ごはんにご飯と味噌汁を食べて、電車で会社に行きます。週末には友達と映画を見たり、公園を散歩したりします。プログラムを書くときは、テストを書くことが大切です。""",
    # Korean
    """서울은 대한민국의 수도입니다. 저는 매일 아침 커피를 마시고 지하철로 회사에 갑니다. 주말에는 친구들과 같이 식사를 하고 영화를 봅니다. 오늘 날씨가 정말 좋네요.""",
    # Arabic
    """القاهرة هي عاصمة مصر، وهي من أكبر المدن في أفريقيا. يعيش فيها ملايين الناس، ويزورها السياح لرؤية الأهرامات ونهر النيل. الطقس حار في الصيف ومعتدل في الشتاء.""",
    # Hindi
    """नई दिल्ली भारत की राजधानी है। मैं हर सुबह चाय पीता हूँ और फिर काम पर जाता हूँ। भारत में बहुत सी भाषाएँ बोली जाती हैं, और हर राज्य का खाना अलग होता है।""",
    # Turkish
    """Ankara Türkiye'nin başkentidir, ama en büyük şehir İstanbul'dur. Sabahları kahvaltıda peynir, zeytin, domates ve çay olur. Hafta sonu arkadaşlarımla sahilde yürüyüş yaparım.""",
    # Polish
    """Warszawa jest stolicą Polski. W niedzielę poszliśmy z dziećmi do parku, a potem na obiad do babci. Zupa była bardzo dobra, a na deser były pierogi z owocami.""",
    # Vietnamese
    """Hà Nội là thủ đô của Việt Nam. Buổi sáng tôi thường ăn phở và uống cà phê sữa đá. Thành phố rất đông xe máy, nhưng cũng có nhiều hồ và công viên đẹp.""",
    # Greek
    """Η Αθήνα είναι η πρωτεύουσα της Ελλάδας. Το καλοκαίρι κάνει πολλή ζέστη και πολλοί άνθρωποι πηγαίνουν στα νησιά για διακοπές.""",
]

CAPITALS = [
    ("Italy", "Rome"), ("France", "Paris"), ("Germany", "Berlin"), ("Spain", "Madrid"),
    ("Portugal", "Lisbon"), ("Austria", "Vienna"), ("Greece", "Athens"),
    ("the United Kingdom", "London"), ("Ireland", "Dublin"), ("Belgium", "Brussels"),
    ("the Netherlands", "Amsterdam"), ("Switzerland", "Bern"), ("Poland", "Warsaw"),
    ("Sweden", "Stockholm"), ("Norway", "Oslo"), ("Denmark", "Copenhagen"),
    ("Finland", "Helsinki"), ("Iceland", "Reykjavik"), ("Russia", "Moscow"),
    ("Ukraine", "Kyiv"), ("Hungary", "Budapest"), ("the Czech Republic", "Prague"),
    ("Romania", "Bucharest"), ("Turkey", "Ankara"), ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"), ("Nigeria", "Abuja"), ("South Africa", "Pretoria"),
    ("Morocco", "Rabat"), ("Ethiopia", "Addis Ababa"), ("India", "New Delhi"),
    ("China", "Beijing"), ("Japan", "Tokyo"), ("South Korea", "Seoul"),
    ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("Indonesia", "Jakarta"),
    ("Australia", "Canberra"), ("New Zealand", "Wellington"), ("Canada", "Ottawa"),
    ("the United States", "Washington"), ("Mexico", "Mexico City"), ("Brazil", "Brasília"),
    ("Argentina", "Buenos Aires"), ("Chile", "Santiago"), ("Peru", "Lima"),
    ("Colombia", "Bogotá"), ("Saudi Arabia", "Riyadh"), ("Iran", "Tehran"), ("Pakistan", "Islamabad"),
]

CAPITAL_TEMPLATES = [
    "The capital of {c} is {k}.",
    "{k} is the capital of {c}.",
    "Q: What is the capital of {c}?\nA: The capital of {c} is {k}.",
    "Last year we travelled to {k}, the capital of {c}, and stayed for a week.",
]

NAMES = ["Alice", "Bob", "Carla", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "James",
         "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quentin", "Rosa", "Sam", "Tara"]
THINGS = ["apples", "books", "chairs", "tickets", "cups of coffee", "emails", "files",
          "photos", "boxes", "letters", "songs", "pages", "bottles of water", "eggs"]
VERBS = ["bought", "sold", "read", "wrote", "found", "lost", "sent", "received", "made", "counted"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
ADJ = ["small", "large", "old", "new", "quiet", "busy", "bright", "dark", "warm", "cold",
       "simple", "careful", "quick", "slow", "happy", "tired", "green", "blue", "red", "white"]
NOUNS = ["house", "street", "garden", "city", "river", "window", "kitchen", "office", "school",
         "market", "bridge", "forest", "car", "dog", "cat", "teacher", "student", "friend", "doctor", "child"]


def stories(n):
    for _ in range(n):
        a, b = R.sample(NAMES, 2)
        x, y = R.randint(2, 40), R.randint(2, 40)
        t = R.choice(THINGS)
        v = R.choice(VERBS)
        d = R.choice(DAYS)
        m = R.choice(MONTHS)
        adj, noun = R.choice(ADJ), R.choice(NOUNS)
        form = R.randint(0, 4)
        if form == 0:
            emit(f"On {d}, {a} {v} {x} {t} and {b} {v} {y}. Together they {v} {x + y} {t}.")
        elif form == 1:
            emit(f"{a} lives in a {adj} {noun} near the {R.choice(NOUNS)}. Every {d} in {m}, {a} visits {b}, and they talk for {x} minutes about the {R.choice(ADJ)} {R.choice(NOUNS)}.")
        elif form == 2:
            emit(f"If {a} has {x} {t} and gives {min(x, y)} of them to {b}, then {a} has {x - min(x, y)} {t} left.")
        elif form == 3:
            emit(f"The meeting with {a} and {b} is on {d}, {R.randint(1, 28)} {m} {R.randint(1990, 2030)}, at {R.randint(8, 18)}:{R.choice(['00', '15', '30', '45'])}.")
        else:
            emit(f"User: Can you help me with my {R.choice(NOUNS)}?\nAssistant: Of course! What would you like to know about your {R.choice(ADJ)} {R.choice(NOUNS)}?")


def arithmetic(n):
    for _ in range(n):
        a, b = R.randint(0, 999), R.randint(1, 99)
        op = R.randint(0, 3)
        if op == 0:
            emit(f"{a} + {b} = {a + b}")
        elif op == 1:
            emit(f"{a} - {b} = {a - b}")
        elif op == 2:
            emit(f"{a} * {b} = {a * b}")
        else:
            emit(f"{a} / {b} = {a / b:.3f}")


CODE_OPS = [("add", "+"), ("sub", "-"), ("mul", "*"), ("max", None), ("min", None), ("clamp", None)]
TYPES_RS = ["i32", "i64", "u8", "u32", "usize", "f32", "f64"]
TYPES_C = ["int", "long", "unsigned", "size_t", "float", "double", "int32_t", "uint8_t"]


def code_variants(n):
    for i in range(n):
        name, sym = R.choice(CODE_OPS)
        var = R.choice(["value", "count", "total", "index", "offset", "width", "height", "score", "length", "size"])
        t = R.choice(TYPES_RS)
        c = R.choice(TYPES_C)
        k = R.randint(0, 2)
        body_rs = f"a {sym} b" if sym else ("a.max(b)" if name == "max" else "a.min(b)" if name == "min" else "a.max(0 as _).min(b)")
        body_c = f"a {sym} b" if sym else ("a > b ? a : b" if name == "max" else "a < b ? a : b" if name == "min" else "a < 0 ? 0 : (a > b ? b : a)")
        if k == 0:
            emit(f"""pub fn {name}_{var}(a: {t}, b: {t}) -> {t} {{
    {body_rs}
}}

let {var}: {t} = {name}_{var}({R.randint(0, 99)} as {t}, {R.randint(0, 99)} as {t});
assert!({var} >= 0 as {t} || {var} < 0 as {t});""")
        elif k == 1:
            emit(f"""def {name}_{var}(a, b):
    \"\"\"Returns the {name} of two {var}s.\"\"\"
    return {body_c.replace('?', 'if').replace(':', 'else') if not sym else body_rs}


{var}s = [{', '.join(str(R.randint(0, 99)) for _ in range(R.randint(3, 8)))}]
print({name}_{var}({var}s[0], {var}s[-1]))""")
        else:
            emit(f"""static {c} {name}_{var}({c} a, {c} b) {{
    return {body_c};
}}

for (size_t i = 0; i < {R.randint(2, 64)}; i++) {{
    {var}[i] = {name}_{var}({var}[i], {R.randint(0, 255)});
}}""")


for p in PROSE:
    emit(p)
for c in CODE:
    emit(c)
for m in MULTI:
    emit(m)
for c, k in CAPITALS:
    for t in CAPITAL_TEMPLATES:
        emit(t.format(c=c, k=k))
stories(700)
arithmetic(300)
code_variants(250)
# a second pass of the hand-written texts in a different order, so their
# tokens weigh as much as the generated ones
mixed = PROSE + CODE + MULTI
R.shuffle(mixed)
for p in mixed:
    emit(p)
print("".join(out), end="")
