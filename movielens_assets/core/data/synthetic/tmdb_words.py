"""Word lists and reference data of the synthetic generator (constant data, no logic): latent and TMDb
genres, per-genre lexicons (titles, keywords, tags, overview phrases), names, countries,
languages, original titles, companies, festivals, certifications.

Order matters: the generators index these tuples with random draws, so reordering or editing
an entry changes every generated dataset (bump `spec.GENERATOR_VERSION`).
"""

from __future__ import annotations

from dataclasses import dataclass

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
