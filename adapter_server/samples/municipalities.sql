-- JP-LINK adapter sample: Japanese municipalities and their population.
-- Figures are rounded census-style numbers for demonstration only.
-- Loaded by `jplink adapter sample` into <home>/sample.db (SQLite).
CREATE TABLE municipality (
    code        VARCHAR(6)    PRIMARY KEY,  -- 全国地方公共団体コード
    name        VARCHAR(40)   NOT NULL,
    name_kana   VARCHAR(80)   NOT NULL,
    prefecture  VARCHAR(10)   NOT NULL,
    population  INTEGER       NOT NULL,
    area_km2    NUMERIC(9, 2) NOT NULL,
    surveyed_on DATE          NOT NULL
);
CREATE INDEX municipality_prefecture ON municipality (prefecture, population);

INSERT INTO municipality VALUES
 ('011002', '札幌市',   'さっぽろし',   '北海道', 1973395, 1121.26, '2020-10-01'),
 ('012025', '函館市',   'はこだてし',   '北海道',  251084,  677.87, '2020-10-01'),
 ('012041', '旭川市',   'あさひかわし', '北海道',  329306,  747.66, '2020-10-01'),
 ('131016', '千代田区', 'ちよだく',     '東京都',   66680,   11.66, '2020-10-01'),
 ('131041', '新宿区',   'しんじゅくく', '東京都',  349385,   18.22, '2020-10-01'),
 ('131130', '渋谷区',   'しぶやく',     '東京都',  243883,   15.11, '2020-10-01'),
 ('132012', '八王子市', 'はちおうじし', '東京都',  579355,  186.38, '2020-10-01'),
 ('261009', '京都市',   'きょうとし',   '京都府', 1463723,  827.83, '2020-10-01'),
 ('271004', '大阪市',   'おおさかし',   '大阪府', 2752412,  225.32, '2020-10-01'),
 ('271403', '堺市',     'さかいし',     '大阪府',  826161,  149.83, '2020-10-01'),
 ('272124', '八尾市',   'やおし',       '大阪府',  264642,   41.72, '2020-10-01'),
 ('401005', '北九州市', 'きたきゅうしゅうし', '福岡県', 939029, 492.50, '2020-10-01'),
 ('401307', '福岡市',   'ふくおかし',   '福岡県', 1612392,  343.47, '2020-10-01'),
 ('472018', '那覇市',   'なはし',       '沖縄県',  317625,   41.42, '2020-10-01');
