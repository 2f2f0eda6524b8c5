"""Synthetic TMDb v3 movie-detail payloads for the movies of a synthetic MovieLens catalogue.

One JSON object per movie with a tmdbId, in the shape of
`GET /3/movie/{id}?append_to_response=credits,keywords,release_dates&language=en-US`
(see `shared/reference/tmdb-api.md` §2.1–2.3): every documented top-level field with its type,
`credits {cast, crew}`, `keywords {keywords}`, `release_dates {results}`; appended blocks carry no `id`.

The text and the people carry the catalogue's latent genre profile, so that text embeddings and
person/keyword features have signal:
- persons (cast and crew) have a genre specialty and are drawn, by popularity, from the specialists of
  a genre sampled from the movie's profile; a person id always has the same name, gender and department;
- keywords come from genre-specific vocabularies (plus a general one), with stable ids;
- overviews and taglines are built from genre-specific phrases (roles, places, threats, goals).

Also holds the lexicons the MovieLens side uses (title words, tag vocabularies), so that tags relate
to the same keywords. Streams: bounded memory whatever the catalogue size.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from movielens_assets.core.data.synthetic import Catalogue

TMDB_FILE = Path("tmdb") / "movie_details.jsonl.gz"

# --------------------------------------------------------------------------------------------------
# Genres
# --------------------------------------------------------------------------------------------------

#: Latent taste genres (MovieLens genres minus IMAX, which is a format, not a taste).
LATENT_GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
N_GENRES = len(LATENT_GENRES)
GENRE_INDEX = {g: i for i, g in enumerate(LATENT_GENRES)}

#: The official TMDb movie genre list (`GET /3/genre/movie/list`, en-US).
TMDB_GENRES: dict[int, str] = {
    28: "Action", 12: "Adventure", 16: "Animation", 35: "Comedy", 80: "Crime", 99: "Documentary",
    18: "Drama", 10751: "Family", 14: "Fantasy", 36: "History", 27: "Horror", 10402: "Music",
    9648: "Mystery", 10749: "Romance", 878: "Science Fiction", 10770: "TV Movie", 53: "Thriller",
    10752: "War", 37: "Western",
}
#: MovieLens genre -> TMDb genre ids (IMAX has no TMDb genre; Film-Noir is filed under Crime).
ML_TO_TMDB_GENRES: dict[str, tuple[int, ...]] = {
    "Action": (28,), "Adventure": (12,), "Animation": (16,), "Children": (10751,), "Comedy": (35,),
    "Crime": (80,), "Documentary": (99,), "Drama": (18,), "Fantasy": (14,), "Film-Noir": (80,),
    "Horror": (27,), "IMAX": (), "Musical": (10402,), "Mystery": (9648,), "Romance": (10749,),
    "Sci-Fi": (878,), "Thriller": (53,), "War": (10752,), "Western": (37,),
}


def _split(s: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in s.split("|") if x.strip())


@dataclass(frozen=True)
class GenreLexicon:
    title: tuple[str, ...]
    keywords: tuple[str, ...]
    tags: tuple[str, ...]
    roles: tuple[str, ...]
    places: tuple[str, ...]
    threats: tuple[str, ...]
    goals: tuple[str, ...]
    templates: tuple[str, ...]
    taglines: tuple[str, ...]


def _lex(**kw: str) -> GenreLexicon:
    return GenreLexicon(**{k: _split(v) for k, v in kw.items()})


LEXICON: dict[str, GenreLexicon] = {
    "Action": _lex(
        title="Strike|Fury|Vengeance|Impact|Bullet|Steel|Thunder|Rampage|Lethal Force|Velocity|Blast|Firestorm|"
        "Target|Siege|Hunter|Edge|Rogue|Zero Hour|Payback|Crossfire",
        keywords="martial arts|car chase|explosion|shootout|hand to hand combat|mercenary|hostage|bodyguard|"
        "one man army|gunfight|special forces|terrorist plot|rescue mission|motorcycle|helicopter|ex-cop|"
        "assassin|bomb|fistfight|showdown",
        tags="action|explosions|great action|fight scenes|adrenaline|fast paced|car chase|badass",
        roles="an ex-special forces operative|a rogue cop|a retired hitman|a bodyguard|a getaway driver|"
        "a former marine|a bounty hunter",
        places="a locked-down skyscraper|the streets of Hong Kong|a heavily guarded compound|a speeding train|"
        "an offshore oil rig|the docks of Marseille",
        threats="a ruthless arms dealer|a cartel enforcer|a rogue general|a gang of mercenaries|a terrorist cell",
        goals="rescue the hostages|stop the detonation|clear their name|settle an old score|protect a key witness",
        templates="{name}, {role}, is pulled back into action when {threat} takes over {place}.|"
        "With time running out, {name} must {goal} before it is too late.|"
        "Outgunned and alone in {place}, {name} fights to {goal}.",
        taglines="No rules. No mercy.|One man. One mission.|Payback has a price.|The clock is ticking.",
    ),
    "Adventure": _lex(
        title="Quest|Journey|Expedition|Horizon|Treasure|Voyage|Lost City|Island|Frontier|Compass|Odyssey|"
        "Jungle|Summit|Legend|Map|Wanderers",
        keywords="treasure hunt|expedition|jungle|lost civilization|ancient map|shipwreck|mountain climbing|"
        "desert|island|explorer|archaeologist|survival|sea voyage|pirate|quest|hidden temple|river|"
        "ancient artifact|wilderness|globetrotting",
        tags="adventure|exciting|epic|fun adventure|treasure|swashbuckler|journey",
        roles="a restless archaeologist|a young cartographer|a disgraced sea captain|a daring explorer|"
        "an orphaned stowaway",
        places="the uncharted Amazon|a forgotten island|the peaks of the Himalayas|the Sahara|an ancient temple",
        threats="a rival treasure hunter|a treacherous storm|a secret society|an unforgiving wilderness",
        goals="find the lost city|recover a legendary artifact|reach the summit|return home alive",
        templates="{name}, {role}, sets out across {place} to {goal}.|"
        "Pursued by {threat}, the expedition must {goal} before the trail goes cold.|"
        "An old map leads {name} deep into {place}.",
        taglines="Adventure is calling.|Every map leads somewhere.|The journey of a lifetime.|Fortune favors the bold.",
    ),
    "Animation": _lex(
        title="Little|Tale|Toy|Wonder|Bubbles|Dragon|Moon|Paws|Sprocket|Rainbow|Kingdom|Whiskers|Lantern|Cloud|"
        "Robot|Magic",
        keywords="talking animals|anthropomorphism|computer animation|hand-drawn animation|stop motion|anime|"
        "based on fairy tale|musical number|sidekick|magical creature|friendship|toys|robot|colorful|"
        "fairy tale|woodland creatures|talking car|cartoon|animal protagonist|anime adaptation",
        tags="animation|pixar|cute|beautiful animation|anime|colorful|studio ghibli|disney",
        roles="a curious young fox|a lonely robot|a brave little toy|a mischievous dragon|a shy mermaid",
        places="a magical kingdom|a bustling toy shop|an enchanted forest|a floating city in the clouds|"
        "a tiny village under the sea",
        threats="a greedy king|a grumpy wizard|a sneaky weasel|a storm of forgotten dreams",
        goals="find the way home|save the enchanted forest|make a true friend|become a real hero",
        templates="In {place}, {role} named {name} dreams of something bigger.|"
        "Together with a band of unlikely friends, {name} sets off to {goal}.|"
        "But when {threat} threatens everything, {name} learns what courage means.",
        taglines="Big adventures come in small packages.|Imagine the possibilities.|"
        "Friendship is the greatest magic.|A whole new world of fun.",
    ),
    "Children": _lex(
        title="Buddy|Puppy|Summer Camp|Best Friends|Kid|Little League|Treehouse|Pony|Snow Day|Magic Kit|Backyard|"
        "Homework|Big Game|Lemonade Stand|Scouts",
        keywords="kids|family|dog|school|summer camp|babysitter|pet|christmas|holiday|best friends|little league|"
        "lost dog|treehouse|family relationships|children|siblings|grandparents|talking dog|slapstick|"
        "family vacation",
        tags="family|kids|children|for kids|heartwarming|childhood|family film",
        roles="a ten-year-old|the new kid in town|a mischievous twin|a young dog lover|a scout troop leader",
        places="a sleepy suburb|summer camp|an old farm|a big city school|grandma's house",
        threats="a bully next door|a greedy developer|a strict principal|the end of summer",
        goals="save the family farm|win the big game|keep their new puppy|find a lost pet",
        templates="{name}, {role}, has one summer to {goal}.|"
        "With help from friends, {name} takes on {threat} in {place}.|"
        "Fun for the whole family as {name} learns the value of friendship.",
        taglines="Friends stick together.|Fun for the whole family.|The best summer ever.|Every kid needs a hero.",
    ),
    "Comedy": _lex(
        title="Wedding|Roommates|Road Trip|Party|Vacation|Oops|Mess|Blind Date|Dude|Neighbors|Stepbrothers|"
        "Bachelor|Office|Fiasco|Hangover|Screwball",
        keywords="parody|satire|road trip|mistaken identity|wedding|roommate|buddy comedy|bachelor party|"
        "dysfunctional family|fish out of water|prank|stand-up comedy|workplace comedy|awkward situation|"
        "spoof|farce|underdog|vacation|office|comedy of errors",
        tags="funny|comedy|hilarious|dark comedy|quirky|witty|satire|goofy",
        roles="a slacker|an uptight accountant|a wedding planner|a failed comedian|an overprotective dad|"
        "an aspiring actor",
        places="a disastrous family reunion|Las Vegas|a small-town diner|a summer camp for adults|a chaotic office",
        threats="an ex who won't go away|a boss from hell|a very angry mobster|a bet gone wrong",
        goals="make it to the wedding on time|save the failing business|win back their ex|get through one weekend",
        templates="{name}, {role}, has one weekend to {goal}.|"
        "Things go hilariously wrong in {place} when {threat} gets involved.|"
        "What could possibly go wrong?",
        taglines="What could possibly go wrong?|They're back, and worse than ever.|Laugh out loud.|"
        "Some guys never grow up.",
    ),
    "Crime": _lex(
        title="Heist|Mob|Racket|Dirty Money|Gangland|Wiretap|Bookie|Syndicate|Hustle|Cold Case|Hitman|"
        "Connection|Underworld|Witness|Ransom",
        keywords="mafia|organized crime|heist|drug cartel|money laundering|police corruption|gangster|"
        "undercover cop|bank robbery|detective|murder investigation|kidnapping|con artist|prison|crime boss|"
        "hitman|drug dealer|corrupt cop|informant|robbery",
        tags="crime|gangsters|mafia|heist|organized crime|violence|police|drugs",
        roles="a small-time hustler|an undercover detective|a veteran safecracker|a mob accountant|"
        "a young informant",
        places="the back streets of Boston|1970s New York|a Chicago precinct|the casinos of Atlantic City|"
        "a sun-baked border town",
        threats="a ruthless crime family|a corrupt police captain|a drug cartel|a vengeful loan shark",
        goals="pull off one last job|bring down the family|walk away clean|expose the corruption",
        templates="{name}, {role} in {place}, gets in over their head with {threat}.|"
        "As the investigation closes in, {name} must {goal}.|"
        "Loyalty is tested when a heist goes wrong.",
        taglines="Crime pays. Until it doesn't.|Everybody has a price.|One last job.|Trust no one.",
    ),
    "Documentary": _lex(
        title="Inside|Portrait|Truth|Voices|Behind the Lines|Chronicle|Record|Planet|Uncovered|Witness|Eyes|"
        "Revolution|Frontline|Archive|Field Notes",
        keywords="documentary|biography|interview|archive footage|nature|environment|politics|music documentary|"
        "sports documentary|history|climate change|social issues|war crimes|investigative journalism|wildlife|"
        "food|science|activism|economics|behind the scenes",
        tags="documentary|informative|thought-provoking|eye-opening|true story|interesting|educational",
        roles="a filmmaker|a former soldier|a renowned chef|a marine biologist|a whistleblower|a jazz musician",
        places="the Arctic|a small fishing village|the halls of Congress|a refugee camp|the Amazon rainforest",
        threats="a warming planet|a decades-long cover-up|an industry in crisis",
        goals="uncover the truth|document a vanishing way of life|tell the untold story",
        templates="This documentary follows {name}, {role}, across {place}.|"
        "Through interviews and archive footage, the film sets out to {goal}.|"
        "An intimate look at {threat} and the people it affects.",
        taglines="The untold story.|Seeing is believing.|The truth will surface.|A film about all of us.",
    ),
    "Drama": _lex(
        title="Silence|Letters|Grace|Long Road|Promise|Memory|River|Winter|Homecoming|Truth|Distance|Brothers|"
        "Daughter|Light|Inheritance|Shadows",
        keywords="family drama|grief|coming of age|friendship|redemption|loss|addiction|illness|social injustice|"
        "marriage|poverty|mother daughter relationship|father son relationship|class differences|immigrant|"
        "forgiveness|loneliness|death|teacher|hospital",
        tags="drama|emotional|powerful|touching|great acting|sad|character study|melancholic",
        roles="a grieving widow|a struggling single father|an ambitious young lawyer|a small-town teacher|"
        "a recovering alcoholic|an immigrant nurse",
        places="a fading mill town|post-war Italy|rural Ireland|a crowded hospital|"
        "a working-class neighborhood of Glasgow",
        threats="a devastating diagnosis|a family secret|the weight of the past|a town that won't forgive",
        goals="rebuild a shattered family|find forgiveness|start over|do the right thing",
        templates="{name}, {role} in {place}, is forced to confront {threat}.|"
        "Over one difficult year, {name} struggles to {goal}.|"
        "A moving portrait of love, loss and resilience.",
        taglines="Some wounds never heal.|Hope is a powerful thing.|Every family has a story.|"
        "Life is what you make it.",
    ),
    "Fantasy": _lex(
        title="Sword|Realm|Sorcerer|Crown|Dragonfire|Enchanted|Throne|Spell|Prophecy|Elven|Wizard|Rune|"
        "Shadowland|Amulet",
        keywords="magic|wizard|dragon|sword and sorcery|prophecy|mythical creature|witch|enchanted forest|"
        "chosen one|elves|curse|medieval|parallel world|sorcery|magical object|dark lord|mythology|"
        "fairy|sword fight|kingdom",
        tags="fantasy|magic|fantasy world|mythology|dragons|visually stunning|wizards",
        roles="a farm boy|an exiled princess|an apprentice wizard|a young witch|the last dragon rider",
        places="the kingdom of Eldoria|an enchanted forest|a realm beyond the mist|"
        "a castle on the edge of the world",
        threats="an ancient dark lord|a terrible curse|a jealous sorceress|an army of shadows",
        goals="fulfil an ancient prophecy|break the curse|reclaim the throne|find the lost amulet",
        templates="In {place}, {role} named {name} discovers a hidden power.|"
        "To {goal}, {name} must face {threat}.|"
        "Magic returns to the world as an ancient prophecy awakens.",
        taglines="Magic has a price.|Legends never die.|The prophecy is real.|Believe in the impossible.",
    ),
    "Film-Noir": _lex(
        title="Dark Passage|Night|Double|Dame|Lady|Street|Killer|Shadow|Alibi|Fog|Big Sleep|Detour|Naked City|"
        "Raw Deal|Gunman",
        keywords="film noir|femme fatale|private detective|black and white|double cross|voice-over narration|"
        "insurance fraud|blackmail|hardboiled|amnesia|nightclub|rain|frame up|alibi|obsession|betrayal|"
        "flashback|los angeles, california|fall guy|murder",
        tags="film noir|noir|black and white|classic|femme fatale|atmospheric|hardboiled",
        roles="a cynical private eye|a down-on-his-luck boxer|an insurance investigator|a nightclub singer|"
        "a disgraced reporter",
        places="rain-slicked Los Angeles|a smoky nightclub|the San Francisco waterfront|a cheap hotel downtown",
        threats="a beautiful femme fatale|a double cross|a blackmailer|a frame-up",
        goals="clear their name|find out who pulled the trigger|get out of town alive",
        templates="{name}, {role}, falls for the wrong person in {place}.|"
        "Framed for murder, {name} has until dawn to {goal}.|"
        "In a city of shadows, nobody is who they seem.",
        taglines="She was bad. She was dangerous.|A dame, a gun, and a double cross.|Every alibi has a crack.|"
        "The night has a thousand eyes.",
    ),
    "Horror": _lex(
        title="Haunting|Curse|Evil|Nightfall|Blood|Possession|Dead|Scream|Nightmare|Ritual|Grave|Fear|Hollow|"
        "Exorcism|Creep",
        keywords="haunted house|ghost|demon|possession|slasher|zombie|vampire|serial killer|supernatural|"
        "exorcism|found footage|cult|gore|monster|witchcraft|cabin in the woods|psychological horror|"
        "jump scare|werewolf|body horror",
        tags="horror|scary|creepy|gore|disturbing|zombies|slasher|ghosts",
        roles="a young mother|a skeptical paranormal investigator|a college student|a night-shift nurse|"
        "a grieving father",
        places="an isolated farmhouse|a cabin in the woods|an abandoned asylum|a small New England town|"
        "a haunted boarding school",
        threats="a malevolent spirit|a masked killer|an ancient demon|the undead|a sinister cult",
        goals="survive the night|break the curse|escape before the next full moon|uncover the house's dark past",
        templates="When {name}, {role}, moves into {place}, strange things begin to happen.|"
        "Hunted by {threat}, they must {goal}.|"
        "Something evil is waiting in the dark.",
        taglines="Don't look behind you.|Evil never dies.|You can't escape what's inside.|Sleep is for the dead.",
    ),
    "Musical": _lex(
        title="Rhythm|Melody|Stage Door|Broadway|Song|Dance|Encore|Harmony|Showtime|Swing|Jukebox|Serenade|Chorus|"
        "Spotlight|Tap",
        keywords="musical|singing|dance|broadway|based on stage musical|singer|jazz|showbiz|talent show|choir|"
        "rock band|pop star|dance competition|band|opera|song|backstage|rehearsal|audition|tap dancing",
        tags="musical|great soundtrack|music|singing|dancing|broadway|catchy songs",
        roles="an aspiring singer|a small-town dancer|a washed-up bandleader|a chorus girl|a street musician",
        places="1930s Broadway|a struggling theatre|the streets of Harlem|a seaside dance hall",
        threats="a ruthless producer|opening night nerves|a rival troupe",
        goals="make it on Broadway|save the theatre|win the dance competition",
        templates="{name}, {role}, dreams of the spotlight in {place}.|"
        "With opening night approaching, the company must {goal}.|"
        "Song and dance fill the screen in this joyful musical.",
        taglines="Let the music move you.|The show must go on.|Dance like nobody's watching.|Sing your heart out.",
    ),
    "Mystery": _lex(
        title="Secret|Riddle|Vanishing|Clue|Puzzle|Enigma|Missing|Key|Cipher|Manor|Locked Room|Whisper|"
        "Disappearance|Case|Mirror",
        keywords="whodunit|investigation|missing person|murder mystery|amateur sleuth|secret|puzzle|"
        "locked room mystery|twist ending|conspiracy|small town|unsolved murder|clue|mansion|red herring|"
        "disappearance|cold case|journalist|inspector|detective",
        tags="mystery|twist ending|clever|whodunit|plot twist|intriguing|detective",
        roles="an amateur sleuth|a retired inspector|a curious journalist|a village librarian",
        places="a remote English manor|a snowbound hotel|a sleepy coastal village|a luxury train",
        threats="a killer hiding in plain sight|a decades-old secret|a vanished heiress",
        goals="solve the murder|find the missing girl|unmask the killer",
        templates="When a body is found in {place}, {name}, {role}, begins asking questions.|"
        "Every clue leads deeper into {threat}.|"
        "To {goal}, {name} must untangle a web of lies.",
        taglines="Everyone is a suspect.|The truth is hidden.|Nothing is what it seems.|Who did it?",
    ),
    "Romance": _lex(
        title="Love|Kiss|Heart|Forever|Paris|Valentine|Sweetheart|Promise|Summer Love|Moonlight|Darling|Proposal|"
        "Affair|Romance|Destiny",
        keywords="love|romance|wedding|first love|love triangle|falling in love|romantic comedy|"
        "long distance relationship|soulmates|affair|second chance|marriage proposal|forbidden love|dating|"
        "heartbreak|meet cute|summer romance|unrequited love|valentine's day|new york city",
        tags="romance|romantic|love story|chick flick|sweet|relationships|feel-good",
        roles="a hopeless romantic|a jaded florist|a widowed architect|a young violinist|a travel writer",
        places="Paris in the spring|a small bookshop in Manhattan|a Tuscan vineyard|a summer on the Maine coast",
        threats="a secret engagement|an ocean between them|a disapproving family",
        goals="follow their heart|win back a lost love|choose between two loves",
        templates="{name}, {role}, never expected to fall in love in {place}.|"
        "Now, facing {threat}, they must decide whether to {goal}.|"
        "A story of second chances and the people we can't forget.",
        taglines="Love is worth the risk.|Some loves last forever.|Follow your heart.|One summer changed everything.",
    ),
    "Sci-Fi": _lex(
        title="Orbit|Signal|Android|Nebula|Colony|Quantum|Eclipse|Galaxy|Protocol|Singularity|Starship|Genesis|"
        "Cyber|Mars|Vortex",
        keywords="space|time travel|alien|artificial intelligence|dystopia|robot|spaceship|cyberpunk|"
        "post-apocalyptic future|virtual reality|cloning|alien invasion|space station|genetic engineering|"
        "parallel universe|future|time loop|mars|android|mind control",
        tags="sci-fi|science fiction|dystopia|space|time travel|artificial intelligence|aliens|cyberpunk",
        roles="a brilliant physicist|a starship pilot|a rogue android|a colony engineer|a hacker",
        places="a dying Earth|a space station orbiting Saturn|a megacity in 2149|a colony on Mars|"
        "a derelict starship",
        threats="a hostile alien intelligence|a runaway AI|a collapsing wormhole|a totalitarian corporation",
        goals="save humanity|return to their own time|shut down the machine|make first contact",
        templates="In the year 2149, {name}, {role}, uncovers a secret that could change everything.|"
        "Stranded on {place}, the crew must {goal}.|"
        "As {threat} closes in, the line between human and machine begins to blur.",
        taglines="The future is now.|In space, no one is coming.|Humanity's last hope.|Time is running out.",
    ),
    "Thriller": _lex(
        title="Trap|Pursuit|Conspiracy|Stranger|Breakdown|Panic|Deadline|Obsession|Blackout|Paranoia|Hostage|"
        "Suspect|Identity|Lockdown",
        keywords="suspense|psychological thriller|cat and mouse|stalker|kidnapping|paranoia|espionage|spy|cia|"
        "double agent|revenge|political thriller|assassination|chase|surveillance|amnesia|hostage situation|"
        "femme fatale|deception|manhunt",
        tags="thriller|suspense|tense|twist ending|psychological|conspiracy|suspenseful|espionage",
        roles="a former CIA analyst|a defense attorney|a paranoid journalist|a suburban mother|"
        "an air traffic controller",
        places="Washington D.C.|a crowded airport|a quiet suburb|an isolated lake house|Berlin",
        threats="a government conspiracy|an obsessed stalker|a mysterious caller|a killer who knows their every move",
        goals="expose the conspiracy|save their kidnapped daughter|prove their innocence",
        templates="{name}, {role}, is drawn into a deadly game by {threat}.|"
        "With nowhere safe in {place}, {name} must {goal}.|"
        "Nothing is what it seems, and time is running out.",
        taglines="Trust no one.|The truth will kill you.|Someone is watching.|Run.",
    ),
    "War": _lex(
        title="Battle|Front|Platoon|Trenches|Beachhead|Infantry|Siege|Warriors|Bravo Company|Convoy|Last Stand|"
        "Bridge|Regiment|Sniper|Armistice",
        keywords="world war ii|world war i|vietnam war|soldier|battle|army|navy|resistance|prisoner of war|nazi|"
        "d-day|military|combat|sniper|holocaust|bomber|submarine|platoon|war hero|cold war",
        tags="war|wwii|military|anti-war|historical|brutal|world war ii",
        roles="a young infantryman|a battle-weary sergeant|a field nurse|a fighter pilot|a resistance fighter",
        places="the beaches of Normandy|the jungles of Vietnam|occupied France|the Western Front|Stalingrad",
        threats="the advancing enemy|an impossible order|a brutal winter",
        goals="bring the platoon home|hold the bridge|deliver a vital message behind enemy lines",
        templates="{name}, {role}, is sent to {place}.|"
        "Facing {threat}, the platoon must {goal}.|"
        "An unflinching portrait of courage and sacrifice in wartime.",
        taglines="War changes everything.|Courage under fire.|No man left behind.|Some heroes never come home.",
    ),
    "Western": _lex(
        title="Outlaw|Frontier|Gunslinger|Dust|Sheriff|Ranch|Canyon|Stagecoach|Bandits|Rawhide|Tombstone|Trail|"
        "Saloon|Bounty|Six-Shooter",
        keywords="western|cowboy|sheriff|outlaw|frontier|bounty hunter|ranch|duel|wild west|train robbery|"
        "native american|saloon|horse|desert|cattle drive|posse|gold rush|spaghetti western|gunslinger|"
        "stagecoach",
        tags="western|cowboys|gunfights|classic western|spaghetti western|desert|wild west",
        roles="a drifter|an aging gunslinger|a frontier sheriff|a widowed rancher|a bounty hunter",
        places="a lawless border town|the Arizona territory|a dusty mining camp|the Texas plains",
        threats="a gang of outlaws|a ruthless cattle baron|a corrupt marshal",
        goals="defend the town|avenge their family|bring the outlaw to justice",
        templates="{name}, {role}, rides into {place}.|"
        "When {threat} takes control, {name} is the only one willing to {goal}.|"
        "Justice comes at the end of a gun.",
        taglines="Justice has a new name.|The West was never this wild.|Draw.|A legend rides again.",
    ),
}
assert tuple(LEXICON) == LATENT_GENRES

GENERAL_KEYWORDS = _split(
    "based on novel or book|sequel|remake|independent film|woman director|based on true story|"
    "duringcreditsstinger|aftercreditsstinger|biography|based on comic|new york city|los angeles, california|"
    "london, england|1980s|1970s|father daughter relationship|small town|flashback|revenge|friendship"
)
GENERAL_TAGS = _split(
    "classic|atmospheric|visually appealing|twist ending|based on a book|Oscar (Best Picture)|great soundtrack|"
    "cinematography|quotable|overrated|must see|boring|predictable|underrated|cult film|funny, but sad|"
    "slow, but worth it|stylized|nonlinear|surreal|BD-R|In Netflix queue|seen more than once|good dialogue|"
    "franchise|sequel|remake|\"classic\" for a reason"
)
GENERIC_TITLE_ADJ = _split(
    "Last|First|Silent|Dark|Wild|Secret|Endless|Broken|American|Midnight|Final|Lost|Hidden|Golden|Crimson|"
    "Blue|Long|Little|Perfect|Savage|Quiet|Burning|Frozen|Hollow|Electric"
)
GENERIC_TITLE_NOUN = _split(
    "Night|Day|City|Man|Woman|Girl|Boy|House|Road|Summer|Winter|River|Sea|Sky|Dream|Heart|World|Kingdom|"
    "Family|Game|Line|Stranger|Garden|Harbor|Valley|Storm|Fire|Sun|Moon|Stars"
)
PLACE_NAMES = _split(
    "Paris|Brooklyn|Tokyo|Texas|Berlin|Chicago|Rome|Dublin|Havana|Alaska|Vegas|Manhattan|Harlem|Oslo|Cairo|Mumbai"
)
FIRST_NAMES_M = _split(
    "James|John|Robert|Michael|William|David|Richard|Joseph|Thomas|Charles|Daniel|Matthew|Anthony|Mark|Paul|"
    "Steven|Andrew|Kenneth|Kevin|Brian|George|Edward|Ronald|Timothy|Jason|Jeffrey|Ryan|Jacob|Gary|Nicholas|"
    "Eric|Jonathan|Stephen|Larry|Justin|Scott|Frank|Benjamin|Samuel|Gregory|Raymond|Patrick|Jack|Dennis|Jerry|"
    "Tyler|Aaron|Henry|Adam|Peter|Nathan|Zachary|Kyle|Walter|Harold|Carl|Arthur|Roger|Joe|Juan|Albert|"
    "Willis|Hiroshi|Kenji|Pierre|Jean|Luc|Marco|Giuseppe|Hans|Jürgen|Raj|Arjun|Min-ho|Wei|Lars|Sven|Diego|"
    "Carlos|José|Mikhail|Ivan|Mads|Rafael|Omar|Tariq|Kwame"
)
FIRST_NAMES_F = _split(
    "Mary|Patricia|Jennifer|Linda|Elizabeth|Barbara|Susan|Jessica|Sarah|Karen|Nancy|Lisa|Betty|Margaret|Sandra|"
    "Ashley|Kimberly|Emily|Donna|Michelle|Dorothy|Carol|Amanda|Melissa|Deborah|Stephanie|Rebecca|Sharon|Laura|"
    "Cynthia|Kathleen|Amy|Angela|Shirley|Anna|Brenda|Pamela|Emma|Nicole|Helen|Samantha|Katherine|Christine|"
    "Debra|Rachel|Carolyn|Janet|Catherine|Maria|Heather|Diane|Ruth|Julie|Olivia|Joyce|Virginia|Victoria|Kelly|"
    "Lauren|Christina|Joan|Evelyn|Judith|Megan|Andrea|Cheryl|Hannah|Jacqueline|Martha|Gloria|Teresa|Ann|"
    "Sophie|Amélie|Isabelle|Chiara|Giulia|Ingrid|Astrid|Yuki|Mei|Priya|Ananya|Ji-woo|Lucía|Carmen|Natalia|"
    "Olga|Freja|Fatima|Amara|Zoë"
)
LAST_NAMES = _split(
    "Smith|Johnson|Williams|Brown|Jones|Garcia|Miller|Davis|Rodriguez|Martinez|Hernandez|Lopez|Gonzalez|Wilson|"
    "Anderson|Thomas|Taylor|Moore|Jackson|Martin|Lee|Perez|Thompson|White|Harris|Sanchez|Clark|Ramirez|Lewis|"
    "Robinson|Walker|Young|Allen|King|Wright|Scott|Torres|Nguyen|Hill|Flores|Green|Adams|Nelson|Baker|Hall|"
    "Rivera|Campbell|Mitchell|Carter|Roberts|Gomez|Phillips|Evans|Turner|Diaz|Parker|Cruz|Edwards|Collins|"
    "Reyes|Stewart|Morris|Morales|Murphy|Cook|Rogers|Gutierrez|Ortiz|Morgan|Cooper|Peterson|Bailey|Reed|Kelly|"
    "Howard|Ramos|Kim|Cox|Ward|Richardson|Watson|Brooks|Chavez|Wood|James|Bennett|Gray|Mendoza|Ruiz|Hughes|"
    "Price|Alvarez|Castillo|Sanders|Patel|Myers|Long|Ross|Foster|Jimenez|O'Brien|McAllister|Dubois|Moreau|"
    "Lefèvre|Rossi|Bianchi|Müller|Schneider|Tanaka|Suzuki|Watanabe|Sharma|Kapoor|Park|Choi|Chen|Wang|Zhang|"
    "Johansson|Lindqvist|Nielsen|Ivanov|Petrov|Silva|Santos|Okafor|Mensah|Haddad|Nakamura|Fernández|Kowalski"
)

# (ISO 3166-1, English name, original language, share of movies)
COUNTRIES: tuple[tuple[str, str, str, float], ...] = (
    ("US", "United States of America", "en", 0.55), ("GB", "United Kingdom", "en", 0.08),
    ("FR", "France", "fr", 0.07), ("DE", "Germany", "de", 0.04), ("JP", "Japan", "ja", 0.05),
    ("IT", "Italy", "it", 0.03), ("CA", "Canada", "en", 0.03), ("ES", "Spain", "es", 0.02),
    ("IN", "India", "hi", 0.02), ("KR", "South Korea", "ko", 0.02), ("CN", "China", "zh", 0.015),
    ("SE", "Sweden", "sv", 0.01), ("AU", "Australia", "en", 0.02), ("MX", "Mexico", "es", 0.01),
    ("BR", "Brazil", "pt", 0.01), ("RU", "Russia", "ru", 0.01), ("DK", "Denmark", "da", 0.008),
    ("HK", "Hong Kong", "cn", 0.007),
)
# iso_639_1 -> (english_name, native name) as TMDb's spoken_languages report them
LANGUAGES: dict[str, tuple[str, str]] = {
    "en": ("English", "English"), "fr": ("French", "Français"), "de": ("German", "Deutsch"),
    "ja": ("Japanese", "日本語"), "it": ("Italian", "Italiano"), "es": ("Spanish", "Español"),
    "hi": ("Hindi", "हिन्दी"), "ko": ("Korean", "한국어/조선말"), "zh": ("Mandarin", "普通话"),
    "sv": ("Swedish", "svenska"), "pt": ("Portuguese", "Português"), "ru": ("Russian", "Pусский"),
    "da": ("Danish", "Dansk"), "cn": ("Cantonese", "广州话 / 廣州話"),
}
# Original (non-English) titles: first part + second part per language.
ORIGINAL_TITLE_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fr": (_split("La Nuit|Le Silence|Les Enfants|La Vie|Le Secret|L'Été|La Route|Le Voyage|La Belle|Les Amants"),
           _split("du Paradis|de Paris|sans fin|perdue|d'hiver|des ombres|du monde|éternel")),
    "de": (_split("Die Nacht|Das Geheimnis|Der Himmel|Die Stadt|Das Leben|Der Weg|Die Zeit"),
           _split("über Berlin|der Anderen|im Winter|ohne Ende|am Meer|der Wölfe")),
    "es": (_split("La Noche|El Secreto|La Casa|El Camino|Los Olvidados|La Vida|El Laberinto"),
           _split("de Madrid|sin fin|del Sur|de los sueños|del fauno|de papel")),
    "it": (_split("La Notte|Il Segreto|La Dolce|Il Cammino|La Strada|Gli Amanti|Il Buono"),
           _split("di Roma|senza fine|d'estate|del mare|vita|perduta")),
    "ja": (_split("千と|東京|夜の|風の|七人の|光の|もののけ"), _split("物語|侍|谷|城|旅|少女|姫")),
    "ko": (_split("살인의|밤의|기억의|바다의|올드"), _split("추억|비밀|여행|노래|보이")),
    "zh": (_split("英雄|月光|卧虎|长城|花样"), _split("年华|传说|之恋|之歌|藏龙")),
    "hi": (_split("दिल|प्यार|रंग|सपनों"), _split("की कहानी|का सफ़र|दे बसंती|का राजा")),
    "sv": (_split("Det sjunde|Sommaren|Fanny och|Smultron"), _split("inseglet|med Monika|Alexander|stället")),
    "pt": (_split("Cidade de|O Auto da|Central do|Terra em"), _split("Deus|Compadecida|Brasil|Transe")),
    "ru": (_split("Сталкер|Солярис|Зеркало|Брат|Левиафан"), _split("ночи|мира|судьбы|снов")),
    "da": (_split("Jagten|Festen|Druk|Efter"), _split("brylluppet|på livet|i mørket|om natten")),
    "cn": (_split("無間|重慶|花樣|阿飛"), _split("道|森林|年華|正傳")),
}
COMPANY_WORDS = _split(
    "Silver Lantern|Northern Light|Red Hill|Blue Harbor|Golden Gate|Crescent|Ironwood|Maple Leaf|Falcon|Summit Peak|"
    "Black Swan|Lionheart|Oakridge|Starfall|Riverside|Twin Oaks|Bright Side|Paper Moon|Wildfire|Polar Star|"
    "Cobalt|Granite|Harborview|Lighthouse|Orchard|Skyline|Tidewater|Velvet|Westwind|Zephyr"
)
COMPANY_SUFFIXES = _split("Pictures|Films|Entertainment|Studios|Productions|Media|Film Partners|Cinema|Film")
FESTIVALS = _split(
    "Cannes Film Festival|Toronto International Film Festival|Sundance Film Festival|Venice Film Festival|"
    "Berlin International Film Festival|Tribeca Film Festival|Telluride Film Festival|SXSW"
)
# Certification ladders by maturity level 0..3 (family, mild, teen, adult); "" = not rated
CERTIFICATIONS: dict[str, tuple[str, str, str, str]] = {
    "US": ("G", "PG", "PG-13", "R"), "GB": ("U", "PG", "12A", "15"), "FR": ("U", "U", "12", "16"),
    "DE": ("0", "6", "12", "16"), "JP": ("G", "G", "PG12", "R15+"), "IT": ("T", "T", "VM14", "VM18"),
    "ES": ("A", "7", "12", "16"), "CA": ("G", "PG", "14A", "18A"), "AU": ("G", "PG", "M", "MA15+"),
    "KR": ("All", "12", "15", "18"), "BR": ("L", "10", "14", "16"), "SE": ("Btl", "7", "11", "15"),
    "DK": ("A", "7", "11", "15"), "IN": ("U", "U", "UA", "A"), "MX": ("AA", "A", "B", "C"),
    "RU": ("0+", "6+", "12+", "16+"), "CN": ("", "", "", ""), "HK": ("I", "IIA", "IIB", "III"),
}
_MATURITY = np.array(
    # Action Adv Anim Child Com Crime Doc Drama Fant Noir Horror Mus Myst Rom SciFi Thr War West
    [2, 1, 0, 0, 1, 3, 1, 2, 1, 2, 3, 0, 2, 1, 2, 3, 3, 2], dtype=np.int8
)

# Crew roles: (pool key, department, job, known_for_department)
_ROLE_POOLS = ("Acting", "Directing", "Writing", "Production", "Sound", "Camera", "Editing", "Casting")
_POOL_SIZE_PER_MOVIE = {  # persons per catalogue movie in each pool (with a floor)
    "Acting": 1.5, "Directing": 0.3, "Writing": 0.35, "Production": 0.35, "Sound": 0.06,
    "Camera": 0.08, "Editing": 0.08, "Casting": 0.04,
}
_KNOWN_FOR = {
    "Acting": "Acting", "Directing": "Directing", "Writing": "Writing", "Production": "Production",
    "Sound": "Sound", "Camera": "Camera", "Editing": "Editing", "Casting": "Production",
}

# --------------------------------------------------------------------------------------------------
# Keyword and tag vocabularies
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """Keyword names with stable TMDb-like ids; per genre the keyword indices (most typical first)."""

    names: tuple[str, ...]
    ids: np.ndarray
    genre_keywords: tuple[np.ndarray, ...]
    general_keywords: np.ndarray


def _stable_ids(names: tuple[str, ...], modulo: int) -> np.ndarray:
    used: set[int] = set()
    out = []
    for n in names:
        k = zlib.crc32(n.encode("utf-8")) % modulo + 1
        while k in used:
            k = k % modulo + 1
        used.add(k)
        out.append(k)
    return np.asarray(out, dtype=np.int64)


def _build_vocabulary() -> Vocabulary:
    names: list[str] = []
    index: dict[str, int] = {}

    def idx(n: str) -> int:
        if n not in index:
            index[n] = len(names)
            names.append(n)
        return index[n]

    per_genre = tuple(np.asarray([idx(k) for k in LEXICON[g].keywords], dtype=np.int64) for g in LATENT_GENRES)
    general = np.asarray([idx(k) for k in GENERAL_KEYWORDS], dtype=np.int64)
    t = tuple(names)
    return Vocabulary(names=t, ids=_stable_ids(t, 300_000), genre_keywords=per_genre, general_keywords=general)


VOCABULARY = _build_vocabulary()


def movie_keywords(cat: Catalogue, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keywords of every catalogue movie as CSR (`ptr`, `kw`): movie i has VOCABULARY indices kw[ptr[i]:ptr[i+1]].

    Each keyword slot draws a genre from the movie's latent profile (80%) and a keyword from that genre's
    vocabulary: half of the time one of the keywords typical of the movie's niche (sub-style) in that genre,
    otherwise Zipf-like over the list (typical ones first); or a general keyword (20%). Deterministic for
    (catalogue, seed).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 51]))
    m = len(cat.movie_id)
    n_kw = np.clip(2 + rng.poisson(2.0 + 4.0 * cat.pop_level), 1, 14).astype(np.int64)
    owner = np.repeat(np.arange(m), n_kw)
    g = _sample_genre(cat, owner, rng)
    gk = VOCABULARY.genre_keywords
    sizes = np.array([len(a) for a in gk])
    offs = np.concatenate([[0], np.cumsum(sizes)])
    flat = np.concatenate(gk)
    rank = np.floor(sizes[g] * rng.random(owner.size) ** 1.6).astype(np.int64)
    k = max(1, int(cat.n_niches))
    if k > 1:
        niche = cat.niche[owner]
        per = -(-sizes[g] // k)  # keywords per niche (ceil)
        in_niche = niche + k * (rng.random(owner.size) * per).astype(np.int64)
        use = (rng.random(owner.size) < 0.5) & (in_niche < sizes[g])
        rank = np.where(use, in_niche, rank)
    kw = flat[offs[g] + rank]
    general = rng.random(owner.size) < 0.2
    gen = VOCABULARY.general_keywords
    kw = np.where(general, gen[rng.integers(0, gen.size, owner.size)], kw)
    # dedupe (movie, keyword) keeping the first slot
    key = owner * len(VOCABULARY.names) + kw
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(owner.size, dtype=bool)
    keep[first] = True
    owner, kw = owner[keep], kw[keep]
    ptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=m))])
    return ptr, kw


def _sample_genre(cat: Catalogue, owner: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One latent genre per row, drawn from the profile of movie `owner[row]`."""
    w = cat.genre_w[owner]
    cum = np.cumsum(w, axis=1)
    u = rng.random(owner.size)[:, None] * cum[:, -1:]
    k = np.minimum((cum <= u).sum(axis=1), w.shape[1] - 1)
    return cat.genre_idx[owner, k].astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Persons and companies
# --------------------------------------------------------------------------------------------------


@dataclass
class _Persons:
    ids: np.ndarray
    names: list[str]
    gender: np.ndarray
    popularity: np.ndarray
    profile: list[str | None]
    pool: np.ndarray  # index into _ROLE_POOLS
    n_niches: int
    # sampling structure: persons sorted by (pool, specialty genre, specialty niche); cumulative popularity
    order: np.ndarray
    cum: np.ndarray
    seg_start: np.ndarray  # flat: segment (p, g, k) = [seg[(p*G+g)*K+k], ... + 1) positions into `order`


def _random_paths(rng: np.random.Generator, n: int, ext: str) -> list[str]:
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)
    chars = alphabet[rng.integers(0, alphabet.size, (n, 27))]
    raw = chars.tobytes()
    return [f"/{raw[i * 27:(i + 1) * 27].decode()}{ext}" for i in range(n)]


def _unique_ids(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """`n` distinct increasing ints in [lo, hi) with random gaps."""
    gap = max(1, (hi - lo) // max(n, 1))
    steps = 1 + rng.integers(0, 2 * gap - 1, n) if gap > 1 else np.ones(n, dtype=np.int64)
    ids = lo + np.cumsum(steps) - 1
    if ids.size and ids[-1] >= hi:
        ids = lo + np.arange(n)
    return ids.astype(np.int64)


def _build_persons(n_movies: int, n_niches: int, rng: np.random.Generator, genre_share: np.ndarray) -> _Persons:
    K = n_niches
    sizes = [max(2 * N_GENRES * K, int(round(_POOL_SIZE_PER_MOVIE[p] * n_movies))) for p in _ROLE_POOLS]
    pool = np.repeat(np.arange(len(_ROLE_POOLS)), sizes)
    n = pool.size
    # specialty (genre, niche): every cell has specialists in every pool; the rest follows the genre shares
    spec = rng.choice(N_GENRES, size=n, p=genre_share)
    spec_niche = rng.integers(0, K, n)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for p in range(len(_ROLE_POOLS)):
        cells = np.arange(N_GENRES * K)
        spec[starts[p]:starts[p] + cells.size] = cells // K
        spec_niche[starts[p]:starts[p] + cells.size] = cells % K
    popularity = np.round(0.6 + rng.pareto(2.2, n) * 3.0, 3)
    gender = np.where(rng.random(n) < 0.45, 1, 2)
    crew = pool != 0
    gender = np.where(crew & (rng.random(n) < 0.65), 2, gender)
    r = rng.random(n)
    gender = np.where(r < 0.06, 0, np.where(r > 0.997, 3, gender))
    first_m = rng.integers(0, len(FIRST_NAMES_M), n)
    first_f = rng.integers(0, len(FIRST_NAMES_F), n)
    female = (gender == 1) | ((gender != 2) & (rng.random(n) < 0.5))
    last = rng.integers(0, len(LAST_NAMES), n)
    names = [
        f"{FIRST_NAMES_F[ff] if fe else FIRST_NAMES_M[fm]} {LAST_NAMES[la]}"
        for fe, ff, fm, la in zip(female.tolist(), first_f.tolist(), first_m.tolist(), last.tolist(), strict=True)
    ]
    ids = _unique_ids(rng, n, 1, max(5_000_000, 30 * n))
    ids = ids[rng.permutation(n)]
    has_profile = rng.random(n) < np.clip(0.35 + popularity / 8, 0, 0.98)
    paths = _random_paths(rng, n, ".jpg")
    profile = [p if h else None for p, h in zip(paths, has_profile.tolist(), strict=True)]
    order = np.lexsort((np.arange(n), spec_niche, spec, pool))
    key = (pool[order] * N_GENRES + spec[order]) * K + spec_niche[order]
    seg_start = np.searchsorted(key, np.arange(len(_ROLE_POOLS) * N_GENRES * K + 1), side="left")
    weight = popularity[order] ** 1.5
    cum = np.concatenate([[0.0], np.cumsum(weight)])
    return _Persons(ids, names, gender, popularity, profile, pool, K, order, cum, seg_start)


def _pick_persons(
    persons: _Persons, pool: int, genre: np.ndarray, niche: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A person of `pool` per row, by popularity among the specialists of (genre, niche) (60%) or of the genre."""
    K = persons.n_niches
    # 8% of the picks leave the movie's genres (people do not only work in their specialty)
    genre = np.where(rng.random(genre.size) < 0.08, rng.integers(0, N_GENRES, genre.size), genre)
    base = (pool * N_GENRES + genre) * K
    exact = rng.random(genre.size) < 0.6
    lo = persons.seg_start[np.where(exact, base + niche, base)]
    hi = persons.seg_start[np.where(exact, base + niche + 1, base + K)]
    x = persons.cum[lo] + rng.random(genre.size) * (persons.cum[hi] - persons.cum[lo])
    pos = np.clip(np.searchsorted(persons.cum, x, side="right") - 1, lo, hi - 1)
    return persons.order[pos]


@dataclass
class _Companies:
    ids: np.ndarray
    names: list[str]
    country: np.ndarray
    logo: list[str | None]


def _build_companies(n_movies: int, rng: np.random.Generator) -> _Companies:
    n = max(40, n_movies // 8)
    share = np.array([c[3] for c in COUNTRIES])
    country = rng.choice(len(COUNTRIES), size=n, p=share / share.sum())
    w = rng.integers(0, len(COMPANY_WORDS), n)
    s = rng.integers(0, len(COMPANY_SUFFIXES), n)
    names = []
    seen: dict[str, int] = {}
    for i in range(n):
        base = f"{COMPANY_WORDS[w[i]]} {COMPANY_SUFFIXES[s[i]]}"
        k = seen.get(base, 0)
        seen[base] = k + 1
        names.append(base if k == 0 else f"{base} {['II', 'III', 'International', 'Group', 'Co.'][k % 5]}"
                     + ("" if k < 5 else f" {k}"))
    ids = _unique_ids(rng, n, 1, max(200_000, 10 * n))[rng.permutation(n)]
    logos = _random_paths(rng, n, ".png")
    has = rng.random(n) < 0.6
    return _Companies(ids, names, country, [p if h else None for p, h in zip(logos, has.tolist(), strict=True)])


# --------------------------------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------------------------------

_CHUNK = 2048


def _credit_ids(rng: np.random.Generator, counter0: int, n: int) -> list[str]:
    """24-hex credit ids, unique across the file: a global counter is encoded in the first and last fields."""
    c = counter0 + np.arange(n, dtype=np.int64)
    hi = c >> 24
    ts = 0x50000000 + hi * 0x100000 + rng.integers(0, 0x100000, n)
    mid = rng.integers(0, 1 << 40, n)
    low = (c & 0xFFFFFF).tolist()
    return [f"{a:08x}{b:010x}{d:06x}" for a, b, d in zip(ts.tolist(), mid.tolist(), low, strict=True)]


def _date(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _overview(
    rng: np.random.Generator, genres: list[int], name: str, blank: bool, niche: int, n_niches: int
) -> tuple[str, str]:
    """(overview, tagline) from genre-specific phrases: two sentences of the primary genre, one of the next.
    With several niches, half of the slot fillers are the ones typical of the movie's niche."""
    if blank:
        return "", ""

    def pick(options: tuple[str, ...]) -> str:
        if n_niches > 1 and rng.random() < 0.5:
            return options[niche % len(options)]
        return options[int(rng.integers(0, len(options)))]

    lex = LEXICON[LATENT_GENRES[genres[0]]]
    picks = rng.permutation(len(lex.templates))[:2].tolist()
    sentences = [lex.templates[i] for i in sorted(picks)]
    if len(genres) > 1:
        lex2 = LEXICON[LATENT_GENRES[genres[1]]]
        sentences.append(lex2.templates[int(rng.integers(0, len(lex2.templates)))])
    out = []
    for k, s in enumerate(sentences):
        lx = lex if k < 2 else LEXICON[LATENT_GENRES[genres[1]]]
        text = s.format(name=name, role=pick(lx.roles), place=pick(lx.places), threat=pick(lx.threats),
                        goal=pick(lx.goals))
        out.append(text[0].upper() + text[1:])
    tagline = lex.taglines[int(rng.integers(0, len(lex.taglines)))] if rng.random() < 0.55 else ""
    return " ".join(out), tagline


def _person_obj(p: _Persons, i: int, known_for: str) -> dict[str, Any]:
    name = p.names[i]
    return {
        "adult": False,
        "gender": int(p.gender[i]),
        "id": int(p.ids[i]),
        "known_for_department": known_for,
        "name": name,
        "original_name": name,
        "popularity": float(p.popularity[i]),
        "profile_path": p.profile[i],
    }


def write_tmdb_payloads(
    cat: Catalogue,
    path: Path,
    seed: int,
    *,
    rating_counts: np.ndarray | None = None,
    rating_means: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Write one TMDb movie-details JSON per catalogue movie with a tmdbId to `path` (gzip JSONL).

    `rating_counts` / `rating_means` (per catalogue movie, from the generated ratings) make `vote_count`
    and `vote_average` consistent with the MovieLens side. Streams in chunks of movies; returns the
    number of payloads. The gzip header carries no name or mtime, so the bytes are deterministic.
    """
    import time

    t0 = time.perf_counter()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 61]))
    m = len(cat.movie_id)
    genre_share = np.bincount(cat.genre_idx[:, 0], minlength=N_GENRES).astype(float) + 1.0
    persons = _build_persons(m, int(cat.n_niches), rng, genre_share / genre_share.sum())
    companies = _build_companies(m, rng)
    kw_ptr, kw_idx = movie_keywords(cat, seed)
    comp_by_country = [np.flatnonzero(companies.country == c) for c in range(len(COUNTRIES))]
    paths_rng = np.random.default_rng(np.random.SeedSequence([seed, 62]))
    collection_paths: dict[int, tuple[str | None, str | None]] = {}
    counts = rating_counts if rating_counts is not None else np.zeros(m)
    means = rating_means if rating_means is not None else np.full(m, np.nan)

    todo = np.flatnonzero(cat.tmdb_id >= 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    counter = 0
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=4, mtime=0, filename="") as gz:
        buf = io.TextIOWrapper(gz, encoding="utf-8", newline="\n", write_through=False)
        for c0 in range(0, todo.size, _CHUNK):
            mov = todo[c0:c0 + _CHUNK]
            crng = np.random.default_rng(np.random.SeedSequence([seed, 63, c0 // _CHUNK]))
            lines, counter = _chunk_payloads(
                cat, mov, crng, persons, companies, comp_by_country, kw_ptr, kw_idx, counts, means,
                counter, paths_rng, collection_paths,
            )
            buf.write("".join(lines))
            written += len(lines)
            if progress is not None and (c0 // _CHUNK) % 8 == 7:
                rate = written / max(time.perf_counter() - t0, 1e-9)
                progress(f"tmdb payloads: {written:,}/{todo.size:,} movies ({rate:,.0f} movies/s)")
        buf.flush()
        buf.detach()
    if progress is not None:
        dt = time.perf_counter() - t0
        progress(f"tmdb payloads: {written:,} movies written in {dt:.1f}s ({os.path.getsize(path) / 2**20:.1f} MiB)")
    return written


def _chunk_payloads(
    cat: Catalogue,
    mov: np.ndarray,
    rng: np.random.Generator,
    persons: _Persons,
    companies: _Companies,
    comp_by_country: list[np.ndarray],
    kw_ptr: np.ndarray,
    kw_idx: np.ndarray,
    counts: np.ndarray,
    means: np.ndarray,
    counter: int,
    paths_rng: np.random.Generator,
    collection_paths: dict[int, tuple[str | None, str | None]],
) -> tuple[list[str], int]:
    n = mov.size
    lvl = cat.pop_level[mov]
    docu = cat.genre_idx[mov, 0] == GENRE_INDEX["Documentary"]
    # ---- cast
    n_cast = np.clip(3 + rng.poisson(3 + 9 * lvl), 2, 40)
    n_cast = np.where(docu, np.clip(n_cast // 3, 1, 6), n_cast)
    owner = np.repeat(np.arange(n), n_cast)
    cast_p = _pick_persons(persons, 0, _sample_genre(cat, mov[owner], rng), cat.niche[mov[owner]], rng)
    key = owner.astype(np.int64) * persons.ids.size + cast_p
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(owner.size, dtype=bool)
    keep[first] = True
    owner, cast_p = owner[keep], cast_p[keep]
    cast_ptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=n))])
    char_r = rng.random((cast_p.size, 4))
    # ---- crew: (pool, department, job) slots
    slots: list[tuple[int, str, str, np.ndarray]] = []
    n_dir = 1 + (rng.random(n) < 0.06)
    prim = cat.genre_idx[mov, 0].astype(np.int64)
    niche = cat.niche[mov]
    for k in range(2):
        has = n_dir > k
        slots.append((1, "Directing", "Director", np.where(has, _pick_persons(persons, 1, prim, niche, rng), -1)))
    directors = slots[0][3]
    writer_jobs = ("Screenplay", "Writer", "Novel", "Story")
    wjob = rng.choice(len(writer_jobs), size=n, p=[0.5, 0.3, 0.12, 0.08])
    for j, job in enumerate(writer_jobs):
        has = (wjob == j) & ~docu
        who = _pick_persons(persons, 2, _sample_genre(cat, mov, rng), niche, rng)
        slots.append((2, "Writing", job, np.where(has, who, -1)))
    # the director also wrote (one person, several crew jobs)
    slots.append((1, "Writing", "Screenplay", np.where(rng.random(n) < 0.3, directors, -1)))
    slots.append((3, "Production", "Producer", _pick_persons(persons, 3, _sample_genre(cat, mov, rng), niche, rng)))
    for _ in range(2):
        has = rng.random(n) < 0.25 + 0.5 * lvl
        slots.append((3, "Production", "Executive Producer",
                      np.where(has, _pick_persons(persons, 3, _sample_genre(cat, mov, rng), niche, rng), -1)))
    slots.append((1, "Production", "Producer", np.where(rng.random(n) < 0.1, directors, -1)))
    for pool, dep, job, pr in (
        (4, "Sound", "Original Music Composer", 0.9), (5, "Camera", "Director of Photography", 0.85),
        (6, "Editing", "Editor", 0.85), (7, "Production", "Casting", 0.55),
    ):
        has = rng.random(n) < pr
        who = _pick_persons(persons, pool, _sample_genre(cat, mov, rng), niche, rng)
        slots.append((pool, dep, job, np.where(has, who, -1)))
    n_credits = int(cast_p.size + sum(int((s[3] >= 0).sum()) for s in slots))
    credit_ids = _credit_ids(rng, counter, n_credits)
    counter += n_credits
    # ---- per-movie scalars
    blank = rng.random(n) < 0.03 * (1 - lvl)
    runtime = np.clip(np.round(rng.normal(104, 18, n)), 60, 220).astype(int)
    runtime = np.where(cat.genre_idx[mov, 0] == GENRE_INDEX["Animation"], np.clip(runtime - 15, 70, 130), runtime)
    runtime = np.where(rng.random(n) < 0.01, 0, runtime)
    has_money = rng.random(n) < 0.15 + 0.7 * lvl
    budget = np.where(has_money, np.round(np.exp(rng.normal(15.5 + 2.5 * lvl, 0.8)), -3), 0).astype(np.int64)
    revenue = np.where(has_money & (rng.random(n) < 0.85),
                       np.round(budget * np.exp(rng.normal(0.6, 0.9, n)), 0), 0).astype(np.int64)
    popularity = np.round(0.6 + 120 * lvl**3 + rng.gamma(1.5, 1.5 + 6 * lvl), 3)
    vc_base = counts[mov] * rng.uniform(0.4, 2.5, n) + rng.poisson(3, n)
    vote_count = np.round(vc_base).astype(np.int64)
    ml_mean = means[mov]
    va = np.where(np.isnan(ml_mean), 6.0 + 1.2 * cat.quality[mov], 2 * ml_mean - 0.7 + rng.normal(0, 0.25, n))
    vote_average = np.where(vote_count > 0, np.round(np.clip(va, 1.0, 9.6), 3), 0.0)
    has_backdrop = rng.random(n) < 0.6 + 0.4 * lvl
    has_poster = rng.random(n) < 0.9 + 0.1 * lvl
    img = _random_paths(rng, 2 * n, ".jpg")
    homepage_r = rng.random(n)
    video = rng.random(n) < 0.01
    status_r = rng.random(n)
    extra_country = rng.random(n) < 0.2
    extra_c = rng.choice(len(COUNTRIES), size=n, p=np.array([c[3] for c in COUNTRIES]) / sum(c[3] for c in COUNTRIES))
    n_comp = 1 + rng.binomial(3, 0.25 + 0.3 * lvl)
    comp_r = rng.random((n, 4))
    day_r = rng.integers(-40, 0, n)
    later_r = rng.integers(60, 240, n)
    rel_r = rng.random((n, 5))

    lines = []
    ci = 0
    for i in range(n):
        mi = int(mov[i])
        genres = [int(g) for g, w in zip(cat.genre_idx[mi], cat.genre_w[mi], strict=True) if g >= 0 and w > 0]
        # ---- credits
        cast = []
        lead_name = None
        cast_id = 0
        for order, pi in enumerate(persons_list := cast_p[cast_ptr[i]:cast_ptr[i + 1]].tolist()):
            character = _character(genres[0], persons.gender[pi] == 1, char_r[cast_ptr[i] + order])
            if lead_name is None:
                lead_name = character.split(" ")[0] if character not in ("Himself", "Herself") else None
            obj = _person_obj(persons, pi, "Acting")
            cast_id += 1 + int(rng.integers(0, 3))  # increasing, with gaps (as TMDb's)
            obj.update(cast_id=cast_id, character=character, credit_id=credit_ids[ci], order=order)
            ci += 1
            cast.append(obj)
        del persons_list
        crew = []
        seen_jobs: set[tuple[int, str]] = set()
        for _pool, dep, job, arr in slots:
            pi = int(arr[i])
            if pi < 0:
                continue
            # a duplicate (person, job) can only come from the director-also-writes/produces slots
            if (pi, job) in seen_jobs:
                ci += 1
                continue
            seen_jobs.add((pi, job))
            obj = _person_obj(persons, pi, _KNOWN_FOR[_ROLE_POOLS[persons.pool[pi]]])
            obj.update(credit_id=credit_ids[ci], department=dep, job=job)
            ci += 1
            crew.append(obj)
        name = lead_name or FIRST_NAMES_F[int(rng.integers(0, len(FIRST_NAMES_F)))]
        overview, tagline = _overview(rng, genres, name, bool(blank[i]), int(cat.niche[mi]), int(cat.n_niches))
        # ---- keywords
        kws = kw_idx[kw_ptr[mi]:kw_ptr[mi + 1]].tolist()
        keywords = [{"id": int(VOCABULARY.ids[k]), "name": VOCABULARY.names[k]} for k in kws]
        # ---- genres
        tmdb_genres: list[int] = []
        if not cat.no_genres[mi]:
            for g in cat.listed[mi].split("|"):
                for tg in ML_TO_TMDB_GENRES[g]:
                    if tg not in tmdb_genres:
                        tmdb_genres.append(tg)
            if "War" in cat.listed[mi] and rel_r[i, 4] < 0.5 and 36 not in tmdb_genres:
                tmdb_genres.append(36)
        # ---- places and languages
        ci_country = int(cat.country[mi])
        iso, cname, lang, _ = COUNTRIES[ci_country]
        countries = [ci_country]
        if extra_country[i] and int(extra_c[i]) != ci_country:
            countries.append(int(extra_c[i]))
        spoken = [lang] + (["en"] if lang != "en" and rel_r[i, 3] < 0.3 else [])
        comps: list[dict[str, Any]] = []
        for k in range(int(n_comp[i])):
            src = comp_by_country[countries[k % len(countries)]]
            if src.size == 0 or comp_r[i, k] < 0.15:
                src = np.arange(companies.ids.size)
            c = int(src[int(comp_r[i, k] * 1e6) % src.size])
            if all(x["id"] != int(companies.ids[c]) for x in comps):
                comps.append({
                    "id": int(companies.ids[c]), "logo_path": companies.logo[c], "name": companies.names[c],
                    "origin_country": COUNTRIES[int(companies.country[c])][0] if comp_r[i, k] > 0.05 else "",
                })
        # ---- release dates
        has_date = bool(cat.show_year[mi])
        rday = int(cat.release_day[mi])
        release_date = _date(rday) if has_date else ""
        maturity = int(_MATURITY[genres].max()) if genres else 1
        maturity = max(0, min(3, maturity - (1 if rel_r[i, 0] < 0.25 else 0)))
        results = []
        if has_date:
            entries = []
            if rel_r[i, 1] < 0.2:
                entries.append(_release(rday + int(day_r[i]), 1, "", FESTIVALS[int(rel_r[i, 1] * 40) % len(FESTIVALS)]))
            entries.append(_release(rday, 3, CERTIFICATIONS.get(iso, ("",) * 4)[maturity], ""))
            if int(cat.year[mi]) >= 1997 and rel_r[i, 2] < 0.4:
                entries.append(_release(rday + int(later_r[i]), 5, CERTIFICATIONS.get(iso, ("",) * 4)[maturity],
                                        "DVD" if int(cat.year[mi]) < 2008 else "Blu-ray"))
            if int(cat.year[mi]) >= 2008 and rel_r[i, 2] > 0.5:
                entries.append(_release(rday + int(later_r[i]) // 2, 4, "", ""))
            results.append({"iso_3166_1": iso, "release_dates": entries})
            if iso != "US" and rel_r[i, 3] < 0.6:
                results.append({"iso_3166_1": "US", "release_dates": [
                    _release(rday + int(later_r[i]) // 3, 3, CERTIFICATIONS["US"][maturity], "")]})
        # ---- collection
        coll = None
        cid = int(cat.collection[mi])
        if cid >= 0:
            if cid not in collection_paths:
                pp = _random_paths(paths_rng, 2, ".jpg")
                collection_paths[cid] = (pp[0], pp[1] if paths_rng.random() < 0.8 else None)
            p_path, b_path = collection_paths[cid]
            coll = {"id": int(cat.collection_tmdb_id[cid]), "name": cat.collection_name[cid],
                    "poster_path": p_path, "backdrop_path": b_path}
        title = cat.display_title[mi]
        hr = homepage_r[i]
        if hr < 0.7:
            homepage = ""
        elif hr < 0.9:
            homepage = f"https://www.{_slug(title)}.com/"
        else:
            studio = companies.names[int(comp_r[i, 0] * 1e6) % companies.ids.size]
            homepage = f"https://www.{_slug(studio)}.com/movies/{_slug(title)}"
        if status_r[i] < 0.997 or not has_date:
            status = "Released"
        else:
            status = "Canceled" if status_r[i] < 0.9985 else "Rumored"
        payload = {
            "adult": False,
            "backdrop_path": img[2 * i] if has_backdrop[i] else None,
            "belongs_to_collection": coll,
            "budget": int(budget[i]),
            "genres": [{"id": g, "name": TMDB_GENRES[g]} for g in tmdb_genres],
            "homepage": homepage,
            "id": int(cat.tmdb_id[mi]),
            "imdb_id": f"tt{int(cat.imdb_id[mi]):07d}",
            "origin_country": [COUNTRIES[c][0] for c in countries],
            "original_language": lang,
            "original_title": cat.original_title[mi],
            "overview": overview,
            "popularity": float(popularity[i]),
            "poster_path": img[2 * i + 1] if has_poster[i] else None,
            "production_companies": comps,
            "production_countries": [{"iso_3166_1": COUNTRIES[c][0], "name": COUNTRIES[c][1]} for c in countries],
            "release_date": release_date,
            "revenue": int(revenue[i]),
            "runtime": int(runtime[i]),
            "spoken_languages": [
                {"english_name": LANGUAGES[s][0], "iso_639_1": s, "name": LANGUAGES[s][1]} for s in spoken
            ],
            "status": status,
            "tagline": tagline,
            "title": title,
            "video": bool(video[i]),
            "vote_average": float(vote_average[i]),
            "vote_count": int(vote_count[i]),
            "credits": {"cast": cast, "crew": crew},
            "keywords": {"keywords": keywords},
            "release_dates": {"results": results},
        }
        lines.append(json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n")
    return lines, counter


def _release(day: int, kind: int, cert: str, note: str) -> dict[str, Any]:
    return {"certification": cert, "descriptors": [], "iso_639_1": "", "note": note,
            "release_date": f"{_date(day)}T00:00:00.000Z", "type": kind}


def _character(primary: int, female: bool, r: np.ndarray) -> str:
    """Character name from four uniform numbers `r` (drawn in bulk per chunk)."""
    g = LATENT_GENRES[primary]
    if g == "Documentary":
        return "Herself" if female else "Himself"
    names = FIRST_NAMES_F if female else FIRST_NAMES_M
    first = names[int(r[0] * len(names))]
    last = LAST_NAMES[int(r[2] * len(LAST_NAMES))]
    if r[1] < 0.55:
        name = f"{first} {last}"
    elif r[1] < 0.85:
        name = first
    else:
        name = f'{first} "{LAST_NAMES[int(r[3] * len(LAST_NAMES))]}" {last}'
    if g == "Animation":
        name += " (voice)"
    return name


def _slug(s: str) -> str:
    out = "".join(ch.lower() if ch.isascii() and ch.isalnum() else "-" for ch in s)
    return "-".join(p for p in out.split("-") if p) or "movie"


def iter_tmdb_payloads(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Read payloads back, one dict per movie. `path` is the .jsonl.gz file or a dataset directory."""
    p = Path(path)
    if p.is_dir():
        p = p / TMDB_FILE
    with gzip.open(p, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
